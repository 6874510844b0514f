// OAuthV2's fault codes, as Apigee's extension reports them.
export const OAUTH_V2_FAULTS = {
  invalidRequest: 'oauth.v2.invalid_request',
  invalidClient: 'oauth.v2.invalid_client',
  unsupportedGrantType: 'oauth.v2.unsupported_grant_type',
  invalidScope: 'oauth.v2.invalid_scope',
  /** No `Authorization: Bearer` token. */
  invalidAccessTokenHeader: 'oauth.v2.InvalidAccessToken',
  invalidAccessToken: 'keymanagement.service.invalid_access_token',
  accessTokenExpired: 'keymanagement.service.access_token_expired',
  accessTokenNotApproved: 'keymanagement.service.access_token_not_approved',
  appNotApproved: 'keymanagement.service.invalid_client-app_not_approved',
  insufficientScope: 'oauth.v2.InsufficientScope',
  noProductMatch: 'keymanagement.service.InvalidAPICallAsNoApiProductMatchFound',
} as const;
