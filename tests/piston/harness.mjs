/**
 * Drives a judge server with npm's piston-client 1.0.2, unchanged, the way a chat bot does:
 *
 *   node harness.mjs <server url>      (the judge must let token-less clients in)
 *
 * Runs each scenario and prints one JSON line of what the client returned; the Python test
 * (test_clients.py) asserts on it. Exits 1 with the error on stderr if the client throws.
 */
import piston from 'piston-client';

const [server] = process.argv.slice(2);
const client = piston({server});

const report = {};
report.runtimes = await client.runtimes();
// The client's short form: language and code; it picks the version itself and sends args 1 2 3.
report.hello = await client.execute('python', 'import sys\nprint("hello", sys.argv[1:])');
// The long form: files, stdin, args, limits.
report.full = await client.execute({
    language: 'c',
    files: [
        {name: 'prog.c', content: '#include <stdio.h>\nint main(int c, char **v){int a,b;scanf("%d %d",&a,&b);printf("%d %s\\n",a+b,v[1]);return 0;}'},
    ],
    stdin: '2 40',
    args: ['x'],
    compileTimeout: 10000,
    runTimeout: 3000,
    compileMemoryLimit: -1,
    runMemoryLimit: -1,
});
report.compileError = await client.execute('c', 'int main( {');
report.timeout = await client.execute('python', 'while True: pass', {runTimeout: 500});
report.unknown = await client.execute('cobol', 'DISPLAY "HI".');
console.log(JSON.stringify(report));
