// tests/real/nodemailer.js - nodemailer's smtp-server for the real-server suite
// (tests/real/test_real.py), on 127.0.0.1.
//
//     NODE_PATH=BUILD/real-node/node_modules node tests/real/nodemailer.js CONFIG.json
//
// CONFIG: {"cert": PEM file, "key": PEM file, "spool": dir,
//          "users": {name: password}, "tokens": {name: XOAUTH2 access token},
//          "reject": address refused at RCPT, "limit": octets for "limits"}
// Every listener announces DSN and ENHANCEDSTATUSCODES (hidden by default in
// smtp-server, offered by most real servers).
// Listeners (port 0: the kernel picks; the ports are printed once all listen):
//   implicit   TLS from the first byte, AUTH PLAIN LOGIN XOAUTH2
//   starttls   plaintext until STARTTLS; AUTH and MAIL refused before it
//   bare       implicit TLS; PIPELINING, 8BITMIME, SMTPUTF8 not announced
//   limits     implicit TLS, SIZE <limit>, an oversized message refused (552)
// Prints "READY {name: port, ...}" on stdout. For each accepted message
// writes SPOOL/N.eml (the bytes as received, dot-unstuffed) and then
// SPOOL/N.json (server, envelope with every MAIL/RCPT parameter as parsed,
// user, TLS), the .json through a rename, so it marks a complete pair.
// SPOOL/events.jsonl: connect, auth (ok or fail), mail, rcpt, data and close
// events; SPOOL/dialogue.jsonl: every command and reply line as the server
// logged it (credentials masked by smtp-server). Exits on SIGTERM.
'use strict';

const fs = require('fs');
const path = require('path');
const util = require('util');
const { SMTPServer } = require('smtp-server');

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const key = fs.readFileSync(cfg.key);
const cert = fs.readFileSync(cfg.cert);
let seq = 0;

function append(file, obj) {
    // appendFileSync: one line per call, in the order things happened
    fs.appendFileSync(path.join(cfg.spool, file), JSON.stringify(obj) + '\n');
}

function event(name, session, fields) {
    append('events.jsonl', Object.assign({ server: name, cid: session && session.id }, fields));
}

function dialogueLogger(name) {
    const log = (entry, message, ...args) => {
        if (message !== 'S:' && message !== 'C:' && !/^C: </.test(message)) return;
        const line = util.format(message, ...args);
        append('dialogue.jsonl', { server: name, cid: entry && entry.cid, line });
    };
    return { trace: log, debug: log, info: log, warn: log, error: log, fatal: log };
}

function envelopeOf(session) {
    const e = session.envelope;
    return {
        mailFrom: e.mailFrom ? { address: e.mailFrom.address, args: e.mailFrom.args || {} } : null,
        rcptTo: e.rcptTo.map(r => ({ address: r.address, args: r.args || {}, dsn: r.dsn || null })),
        bodyType: e.bodyType,
        smtpUtf8: e.smtpUtf8,
        dsn: e.dsn || null
    };
}

function makeServer(name, opts) {
    const server = new SMTPServer(Object.assign({
        key,
        cert,
        name: 'nodemailer.tlsmail.test',
        banner: 'tlsmail real-server suite',
        authMethods: ['PLAIN', 'LOGIN', 'XOAUTH2'],
        disableReverseLookup: true,
        logger: dialogueLogger(name),
        size: 52428800,
        rejectOversized: true,
        hideDSN: false,
        hideENHANCEDSTATUSCODES: false,

        onConnect(session, callback) {
            event(name, session, { event: 'connect', secure: session.secure });
            callback();
        },

        onAuth(auth, session, callback) {
            let ok;
            if (auth.method === 'XOAUTH2') {
                ok = Object.prototype.hasOwnProperty.call(cfg.tokens, auth.username) &&
                     cfg.tokens[auth.username] === auth.accessToken;
            } else {
                ok = Object.prototype.hasOwnProperty.call(cfg.users, auth.username) &&
                     cfg.users[auth.username] === auth.password;
            }
            event(name, session, { event: 'auth', method: auth.method, user: auth.username,
                                   ok, secure: session.secure });
            if (ok) return callback(null, { user: auth.username });
            if (auth.method === 'XOAUTH2') {
                // RFC 7628 3.2.2 error: the client must answer it before the final 535
                return callback(null, { data: { status: '401', schemes: 'bearer', scope: 'https://mail.example/' } });
            }
            const err = new Error('5.7.8 Authentication credentials invalid');
            err.responseCode = 535;
            return callback(err);
        },

        onMailFrom(address, session, callback) {
            event(name, session, { event: 'mail', address: address.address, args: address.args || {},
                                   secure: session.secure });
            if (!session.secure) {
                const err = new Error('5.7.0 Must issue a STARTTLS command first');
                err.responseCode = 530;
                return callback(err);
            }
            callback();
        },

        onRcptTo(address, session, callback) {
            const refused = address.address.toLowerCase() === cfg.reject;
            event(name, session, { event: 'rcpt', address: address.address, args: address.args || {},
                                   refused });
            if (refused) {
                const err = new Error('5.1.1 no such user here');
                err.responseCode = 550;
                return callback(err);
            }
            callback();
        },

        onData(stream, session, callback) {
            const chunks = [];
            stream.on('data', c => chunks.push(c));
            stream.on('end', () => {
                const body = Buffer.concat(chunks);
                const over = !!stream.sizeExceeded;
                event(name, session, { event: 'data', bytes: body.length, sizeExceeded: over });
                if (over) return callback(); // rejectOversized answers 552 itself
                const n = ++seq;
                const base = path.join(cfg.spool, String(n).padStart(6, '0'));
                fs.writeFileSync(base + '.eml', body);
                const meta = {
                    server: name,
                    cid: session.id,
                    envelope: envelopeOf(session),
                    user: session.user || null,
                    transmissionType: session.transmissionType,
                    secure: session.secure,
                    tls: session.tlsOptions || null,
                    servername: session.servername || null,
                    hello: session.hostNameAppearsAs,
                    bytes: body.length
                };
                fs.writeFileSync(base + '.json.tmp', JSON.stringify(meta));
                fs.renameSync(base + '.json.tmp', base + '.json');
                callback(null, 'OK: stored as ' + n);
            });
        },

        onClose(session) {
            event(name, session, { event: 'close' });
        }
    }, opts));
    server.on('error', err => {
        process.stderr.write(name + ': ' + (err && err.stack || err) + '\n');
    });
    return server;
}

const listeners = {
    implicit: { secure: true },
    starttls: { secure: false },
    bare: { secure: true, hidePIPELINING: true, hide8BITMIME: true, hideSMTPUTF8: true },
    limits: { secure: true, size: cfg.limit }
};

const ports = {};
let pending = Object.keys(listeners).length;
for (const [name, opts] of Object.entries(listeners)) {
    const server = makeServer(name, opts);
    server.listen(0, '127.0.0.1', () => {
        ports[name] = server.server.address().port;
        if (--pending === 0) process.stdout.write('READY ' + JSON.stringify(ports) + '\n');
    });
}

process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
