// Child of open-database tests: opens the SQLite file argv[2] as another user (argv[3], a uid), the way a gateway
// whose container UID changed finds a file it may not write; prints the outcome as one JSON line.
const [file, uid] = process.argv.slice(2);
process.setgid!(Number(uid));
process.setuid!(Number(uid));
const { openDatabase } = await import('./open-database.js');
try {
  const db = await openDatabase(`sqlite:${file}`);
  await db.close();
  console.log(JSON.stringify({ opened: true }));
} catch (err) {
  console.log(JSON.stringify({ opened: false, name: (err as Error).name, message: (err as Error).message }));
}
