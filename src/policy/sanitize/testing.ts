// Test support for the sanitizer policies: a scriptable external classifier.
import { createServer } from 'node:http';

export interface ClassifierStub {
  url: string;
  /** The score answered; 'fail' answers 500, 'hang' never answers. */
  answer: number | 'fail' | 'hang';
  /** Texts it was asked about. */
  texts: string[];
  close(): Promise<void>;
}

export async function startClassifierStub(): Promise<ClassifierStub> {
  const stub: ClassifierStub = { url: '', answer: 0, texts: [], close: async () => {} };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      stub.texts.push((JSON.parse(Buffer.concat(chunks).toString()) as { text: string }).text);
      if (stub.answer === 'hang') return;
      if (stub.answer === 'fail') return void res.writeHead(500).end();
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ score: stub.answer }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  stub.url = `http://127.0.0.1:${(server.address() as { port: number }).port}/classify`;
  stub.close = () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return stub;
}
