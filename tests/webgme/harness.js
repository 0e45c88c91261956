/*eslint-env node*/
/**
 * Drives a judge server with WebGME's own clients, loaded unchanged from webgme-engine the way
 * its index.js loads them (requirejs over src/, with superagent, q and agentkeepalive from npm).
 *
 *   node harness.js <server url> <token> <other token> <seed zip path>
 *
 * Runs every scenario, asserts as it goes and prints one JSON line of what it saw; exits 1 with
 * the failure on stderr when anything is not as WebGME's plugin expects.
 */
'use strict';

const assert = require('assert');
const fs = require('fs');
const path = require('path');
const requirejs = require('requirejs');

const webgmeRoot = path.dirname(require.resolve('webgme-engine/package.json'));
requirejs.config({
    nodeRequire: require,
    baseUrl: path.join(webgmeRoot, 'src'),
    paths: {blob: 'common/blob', executor: 'common/executor'}
});
const BlobClient = requirejs('blob/BlobClient');
const BlobMetadata = requirejs('blob/BlobMetadata');
const ExecutorClient = requirejs('executor/ExecutorClient');
const crypto = require('crypto');
const {pathToFileURL} = require('url');
let mime = null; // webgme-engine's own mime package (an ES module), loaded in main()

/** The hash WebGME's blob server gives this metadata (BlobBackendBase.putMetadata). */
function webgmeHash(descriptor) {
    const posted = JSON.parse(JSON.stringify(new BlobMetadata(descriptor).serialize(), null, 4));
    const stored = JSON.stringify(new BlobMetadata(posted).serialize());
    return crypto.createHash('sha1').update(stored).digest('hex');
}

/** The hash WebGME's blob server gives a file (BlobBackendBase.putFile). */
function webgmeFileHash(name, data) {
    return webgmeHash({
        name: name,
        size: data.length,
        mime: mime.getType(name) || 'application/octet-stream',
        isPublic: false,
        tags: [],
        content: crypto.createHash('sha1').update(data).digest('hex'),
        contentType: BlobMetadata.CONTENT_TYPES.OBJECT
    });
}

const [url, token, otherToken, seedZipPath] = process.argv.slice(2);
const server = new URL(url);
const quiet = {debug() {}, log() {}, info() {}, warn() {}, error() {}, fork() { return quiet; }};

function clients(webgmeToken) {
    const params = {
        server: server.hostname,
        serverPort: server.port,
        httpsecure: false,
        webgmeToken: webgmeToken,
        logger: quiet
    };
    return {blob: new BlobClient(params), executor: new ExecutorClient(params)};
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

/** Poll getInfo as ExecutorPlugin does, fetching new output segments while the job runs. */
async function runToEnd(executor, hash, timeoutMs) {
    const deadline = Date.now() + timeoutMs;
    let latest = 0;
    const segments = [];
    const seenWhileRunning = [];
    for (;;) {
        const info = await executor.getInfo(hash);
        if (info.status === 'CREATED' || info.status === 'RUNNING') {
            if (info.outputNumber !== undefined && info.outputNumber !== null &&
                info.outputNumber >= latest) {
                const got = await executor.getOutput(hash, latest, info.outputNumber + 1);
                got.forEach(o => segments.push(o));
                if (info.status === 'RUNNING') {
                    seenWhileRunning.push(...got.map(o => o.outputNumber));
                }
                latest = info.outputNumber + 1;
            }
        } else {
            return {info, segments, seenWhileRunning};
        }
        assert(Date.now() < deadline, `job ${hash} still ${info.status} after ${timeoutMs} ms`);
        await sleep(150);
    }
}

async function saveJob(blob, config, files) {
    const artifact = blob.createArtifact('jobInfo');
    await artifact.addFiles(Object.assign({'executor_config.json': JSON.stringify(config, null, 2)},
        files || {}));
    const hash = await artifact.save();
    assert.strictEqual(hash, webgmeHash(artifact.descriptor), 'artifact hash differs from WebGME');
    return hash;
}

function newConfig(executor, cmd, args, interval, segmentSize) {
    const config = executor.getNewExecutorConfig(cmd, args, interval, segmentSize);
    return config;
}

async function rejectsWith(promise, status) {
    try {
        await promise;
    } catch (err) {
        const got = typeof err === 'number' ? err : (err.status || Number(err.message));
        assert.strictEqual(got, status, `expected ${status}, got ${err}`);
        return;
    }
    assert.fail(`expected a ${status} rejection`);
}

async function artifactJob(alice) {
    const script = 'for i in 1 2 3 4 5 6 7 8; do echo "line $i"; sleep 0.5; done; ' +
        'mkdir -p out; echo result > out/new_name.json; echo log > run.log';
    const config = newConfig(alice.executor, 'sh', ['-c', script, 'dummy'], 300, 1);
    config.defineResultArtifact('all', []);
    config.defineResultArtifact('resultFile', ['out/new_name.json']);
    const hash = await saveJob(alice.blob, config, {'data/input.txt': 'input'});
    const meta = await alice.blob.getMetadata(hash);
    assert.strictEqual(meta.contentType, 'complex');
    assert.deepStrictEqual(Object.keys(meta.content).sort(),
        ['data/input.txt', 'executor_config.json']);
    // The same content saved again is the same artifact.
    assert.strictEqual(await saveJob(alice.blob, config, {'data/input.txt': 'input'}), hash);

    const created = await alice.executor.createJob({hash: hash});
    assert.strictEqual(created.hash, hash);
    assert.strictEqual(created.status, 'CREATED');
    const {info, segments, seenWhileRunning} = await runToEnd(alice.executor, hash, 60000);
    assert.strictEqual(info.status, 'SUCCESS', JSON.stringify(info));
    assert(seenWhileRunning.length >= 2, `segments while running: ${seenWhileRunning}`);

    const all = await alice.executor.getOutput(hash);
    assert.deepStrictEqual(all.map(o => o.outputNumber), all.map((o, i) => i));
    const text = all.map(o => o.output).join('');
    assert.strictEqual(text, [1, 2, 3, 4, 5, 6, 7, 8].map(i => `line ${i}\n`).join(''));
    assert.strictEqual(segments.map(o => o.output).join(''),
        text.slice(0, segments.map(o => o.output).join('').length));
    const tail = await alice.executor.getOutput(hash, 1, 2);
    assert.deepStrictEqual(tail.map(o => o.outputNumber), [1]);
    assert.strictEqual(info.outputNumber, all.length - 1);

    // Results are artifacts: the plugin's way of reading one back.
    const resultMeta = await alice.blob.getMetadata(info.resultHashes.resultFile);
    assert.strictEqual(resultMeta.contentType, 'complex');
    const newName = await alice.blob.getObject(resultMeta.content['out/new_name.json'].content);
    assert.strictEqual(newName.toString(), 'result\n');
    const artifact = await alice.blob.getArtifact(info.resultHashes.all);
    assert.strictEqual(artifact.descriptor.name, 'all.zip');
    assert.strictEqual(webgmeHash(artifact.descriptor), info.resultHashes.all,
        'a result artifact\'s hash differs from what WebGME would give it');
    const names = Object.keys(artifact.descriptor.content).sort();
    assert.deepStrictEqual(names, ['data/input.txt', 'executor_config.json', 'job_stderr.txt',
        'job_stdout.txt', 'out/new_name.json', 'run.log']);
    const stdout = await alice.blob.getSubObject(info.resultHashes.all, 'job_stdout.txt');
    assert.strictEqual(stdout.toString(), text);
    const nested = await alice.blob.getSubObject(info.resultHashes.all, 'out/new_name.json');
    assert.strictEqual(nested.toString(), 'result\n');
    const zip = await alice.blob.getObject(info.resultHashes.all);
    assert.strictEqual(zip.slice(0, 2).toString(), 'PK');
    const asString = await alice.blob.getObjectAsString(
        artifact.descriptor.content['run.log'].content);
    assert.strictEqual(asString, 'log\n');
    return {hash, info, segmentsWhileRunning: seenWhileRunning.length, segments: all.length};
}

async function seedZipJob(alice) {
    const data = fs.readFileSync(seedZipPath);
    const hash = await alice.blob.putFile('jobdefinition.zip', data);
    assert.strictEqual(hash, webgmeFileHash('jobdefinition.zip', data), 'file hash differs');
    for (const name of ['notes.txt', 'run.py', 'x.JSON', 'Makefile', 'caf\u00e9 \u2603.c']) {
        const content = Buffer.from(`content of ${name}\n`);
        assert.strictEqual(await alice.blob.putFile(name, content), webgmeFileHash(name, content),
            `hash of '${name}' differs from WebGME`);
    }
    const meta = await alice.blob.getMetadata(hash);
    assert.strictEqual(meta.contentType, 'object');
    await alice.executor.createJob(hash);
    const {info} = await runToEnd(alice.executor, hash, 60000);
    assert.strictEqual(info.status, 'SUCCESS', JSON.stringify(info));
    const stdout = await alice.blob.getSubObject(info.resultHashes.all, 'job_stdout.txt');
    assert.strictEqual(stdout.toString(),
        'some sample text to be written to file to be written to job_stdout.txt\n');
    const artifact = await alice.blob.getArtifact(info.resultHashes.all);
    assert(Object.hasOwn(artifact.descriptor.content, 'executor_config.json'));
    return {hash, info};
}

async function cancelledJob(alice) {
    const config = newConfig(alice.executor, 'sleep', ['30']);
    const hash = await saveJob(alice.blob, config);
    const created = await alice.executor.createJob({hash: hash});
    for (let i = 0; ; i++) {
        const info = await alice.executor.getInfo(hash);
        if (info.status === 'RUNNING') {
            break;
        }
        assert(i < 200, 'the job never ran');
        await sleep(150);
    }
    await alice.executor.cancelJob(created, created.secret);
    const {info} = await runToEnd(alice.executor, hash, 60000);
    assert.strictEqual(info.status, 'CANCELED');
    return {hash, info};
}

async function failingJob(alice) {
    const config = newConfig(alice.executor, 'sh', ['-c', 'echo about to fail; exit 3']);
    config.defineResultArtifact('logs', ['job_*.txt']);
    const hash = await saveJob(alice.blob, config);
    await alice.executor.createJob({hash: hash});
    const {info} = await runToEnd(alice.executor, hash, 60000);
    assert.strictEqual(info.status, 'FAILED_TO_EXECUTE');
    // The plugin still adds the results of a failed job for the user to debug.
    const logs = await alice.blob.getSubObject(info.resultHashes.logs, 'job_stdout.txt');
    assert.strictEqual(logs.toString(), 'about to fail\n');
    return {hash, info};
}

async function isolation(bob, done) {
    await rejectsWith(bob.executor.getInfo(done.hash), 404);
    await rejectsWith(bob.executor.getOutput(done.hash), 404);
    await rejectsWith(bob.executor.cancelJob(done.hash), 404);
    await rejectsWith(bob.blob.getMetadata(done.info.resultHashes.all), 404);
    await rejectsWith(bob.blob.getSubObject(done.info.resultHashes.all, 'job_stdout.txt'), 404);
    assert.deepStrictEqual(await bob.executor.getInfoByStatus('SUCCESS'), {});
    assert.deepStrictEqual(await bob.executor.getAllInfo(), {});
    assert.deepStrictEqual(await bob.executor.getWorkersInfo(), {});
}

async function main() {
    const mimeModule = await import(pathToFileURL(require.resolve('mime', {paths: [webgmeRoot]})));
    mime = mimeModule.getType ? mimeModule : mimeModule.default;
    const alice = clients(token);
    const bob = clients(otherToken);
    const report = {};
    const [artifact, seed, cancelled, failing] = await Promise.all(
        [artifactJob(alice), seedZipJob(alice), cancelledJob(alice), failingJob(alice)]);
    report.artifact = artifact;
    report.seed = seed;
    report.cancelled = cancelled;
    report.failing = failing;
    await isolation(bob, artifact);
    const listed = await alice.executor.getInfoByStatus('SUCCESS');
    assert.deepStrictEqual(Object.keys(listed).sort(), [artifact.hash, seed.hash].sort());
    report.listed = Object.keys(await alice.executor.getAllInfo()).length;
    process.stdout.write(JSON.stringify(report) + '\n');
}

main().then(() => process.exit(0), err => {
    process.stderr.write((err && err.stack) || String(err));
    process.stderr.write('\n');
    process.exit(1);
});
