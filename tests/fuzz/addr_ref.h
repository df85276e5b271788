/* addr_ref.h - a reference for the RFC 5321 4.1.2 Mailbox grammar (with
   RFC 5321 4.1.3 address literals and RFC 6531 3.3 UTF-8), for the fuzz targets
   to hold tlsmail__check_mailbox against.

   Written in another style than the library's scanner on purpose: every
   ABNF rule is a function from the set of positions where it may start to
   the set of positions where it may end. All parses are followed at once,
   so there are no greedy choices and no backtracking to get wrong, and
   each rule reads like its ABNF line (RFC 5234: quoted strings are
   case-insensitive, %x ranges are octets).

   Where the RFCs leave a choice, this file makes the one the library
   documents, so the two must agree on every input:
   - U-label (RFC 6531 3.3, RFC 5890 2.3.2.1): a label of letters, digits,
     hyphens and UTF8-non-ascii characters, a hyphen neither first nor
     last; the IDNA2008 code point tables are not applied.
   - "IPv6" is the registered Standardized-tag: "[IPv6:...]" must hold an
     IPv6-addr and is never read as a General-address-literal.
   - Local part at most 64 octets, the whole address at most 254 (a
     256-octet path less "<>"), RFC 5321 4.5.3.1.
   - "" is valid only as MAIL's null reverse-path, "Postmaster" (any case)
     only as a RCPT argument. */
#ifndef TLSMAIL_FUZZ_ADDR_REF_H
#define TLSMAIL_FUZZ_ADDR_REF_H
#include <stdint.h>
#include <string.h>

enum { REF_RCPT = 0, REF_MAIL = 1, REF_MAILBOX = 2 };
enum { REF_MAX_LEN = 254, REF_WORDS = 4 }; /* positions 0..255 */

typedef struct { uint64_t w[REF_WORDS]; } ref_set;
typedef struct { const unsigned char *s; size_t n; } ref_in;
typedef ref_set (*ref_rule)(const ref_in *in, ref_set from);

static ref_set ref_none(void) {
    ref_set r;
    memset(&r, 0, sizeof r);
    return r;
}
static ref_set ref_at(size_t p) {
    ref_set r = ref_none();
    r.w[p / 64] |= (uint64_t)1 << (p % 64);
    return r;
}
static int ref_has(const ref_set *a, size_t p) { return (int)(a->w[p / 64] >> (p % 64) & 1); }
static ref_set ref_or(ref_set a, ref_set b) {
    int i;
    for (i = 0; i < REF_WORDS; i++) a.w[i] |= b.w[i];
    return a;
}
static ref_set ref_minus(ref_set a, ref_set b) {
    int i;
    for (i = 0; i < REF_WORDS; i++) a.w[i] &= ~b.w[i];
    return a;
}
static int ref_empty(ref_set a) {
    int i;
    for (i = 0; i < REF_WORDS; i++)
        if (a.w[i]) return 0;
    return 1;
}

/* One octet in lo..hi. */
static ref_set ref_range(const ref_in *in, ref_set from, unsigned lo, unsigned hi) {
    ref_set out = ref_none();
    int i;
    for (i = 0; i < REF_WORDS; i++) {
        uint64_t w = from.w[i];
        while (w) {
            size_t p = (size_t)i * 64 + (size_t)__builtin_ctzll(w);
            w &= w - 1;
            if (p < in->n && in->s[p] >= lo && in->s[p] <= hi) out = ref_or(out, ref_at(p + 1));
        }
    }
    return out;
}
static ref_set ref_ch(const ref_in *in, ref_set from, unsigned c) { return ref_range(in, from, c, c); }
/* One of the octets in chars: an alternation of single-octet strings. */
static ref_set ref_any(const ref_in *in, ref_set from, const char *chars) {
    ref_set out = ref_none();
    size_t p;
    for (p = 0; p < in->n; p++)
        if (ref_has(&from, p) && in->s[p] && strchr(chars, in->s[p])) out = ref_or(out, ref_at(p + 1));
    return out;
}
/* A quoted string of the ABNF: case-insensitive. */
static ref_set ref_lit(const ref_in *in, ref_set from, const char *lit) {
    for (; *lit; lit++) {
        unsigned c = (unsigned char)*lit;
        ref_set a = ref_ch(in, from, c);
        if (c >= 'a' && c <= 'z') a = ref_or(a, ref_ch(in, from, c - 32));
        if (c >= 'A' && c <= 'Z') a = ref_or(a, ref_ch(in, from, c + 32));
        from = a;
    }
    return from;
}
/* *rule */
static ref_set ref_star(const ref_in *in, ref_set from, ref_rule r) {
    ref_set all = from, frontier = from;
    while (!ref_empty(frontier)) {
        ref_set next = r(in, frontier);
        frontier = ref_minus(next, all);
        all = ref_or(all, next);
    }
    return all;
}
/* min*max rule */
static ref_set ref_rep(const ref_in *in, ref_set from, ref_rule r, int min, int max) {
    ref_set acc = min == 0 ? from : ref_none(), cur = from;
    int k;
    for (k = 1; k <= max && !ref_empty(cur); k++) {
        cur = r(in, cur);
        if (k >= min) acc = ref_or(acc, cur);
    }
    return acc;
}

/* RFC 5234 B.1 */
static ref_set ALPHA(const ref_in *in, ref_set f) {
    return ref_or(ref_range(in, f, 0x41, 0x5A), ref_range(in, f, 0x61, 0x7A));
}
static ref_set DIGIT(const ref_in *in, ref_set f) { return ref_range(in, f, 0x30, 0x39); }
static ref_set HEXDIG(const ref_in *in, ref_set f) {
    return ref_or(DIGIT(in, f), ref_or(ref_range(in, f, 'A', 'F'), ref_range(in, f, 'a', 'f')));
}

/* RFC 3629 4 (RFC 6532 3.1 names them UTF8-non-ascii) */
static ref_set UTF8_tail(const ref_in *in, ref_set f) { return ref_range(in, f, 0x80, 0xBF); }
static ref_set UTF8_2(const ref_in *in, ref_set f) { return UTF8_tail(in, ref_range(in, f, 0xC2, 0xDF)); }
static ref_set UTF8_3(const ref_in *in, ref_set f) {
    ref_set a = UTF8_tail(in, ref_range(in, ref_ch(in, f, 0xE0), 0xA0, 0xBF));
    ref_set b = ref_rep(in, ref_range(in, f, 0xE1, 0xEC), UTF8_tail, 2, 2);
    ref_set c = UTF8_tail(in, ref_range(in, ref_ch(in, f, 0xED), 0x80, 0x9F));
    ref_set d = ref_rep(in, ref_range(in, f, 0xEE, 0xEF), UTF8_tail, 2, 2);
    return ref_or(ref_or(a, b), ref_or(c, d));
}
static ref_set UTF8_4(const ref_in *in, ref_set f) {
    ref_set a = ref_rep(in, ref_range(in, ref_ch(in, f, 0xF0), 0x90, 0xBF), UTF8_tail, 2, 2);
    ref_set b = ref_rep(in, ref_range(in, f, 0xF1, 0xF3), UTF8_tail, 3, 3);
    ref_set c = ref_rep(in, ref_range(in, ref_ch(in, f, 0xF4), 0x80, 0x8F), UTF8_tail, 2, 2);
    return ref_or(a, ref_or(b, c));
}
static ref_set UTF8_non_ascii(const ref_in *in, ref_set f) {
    return ref_or(UTF8_2(in, f), ref_or(UTF8_3(in, f), UTF8_4(in, f)));
}

/* RFC 5322 3.2.3 atext, RFC 6531 3.3: atext =/ UTF8-non-ascii */
static ref_set atext(const ref_in *in, ref_set f) {
    ref_set r = ref_or(ALPHA(in, f), DIGIT(in, f));
    r = ref_or(r, ref_any(in, f, "!#$%&'*+-/=?^_`{|}~"));
    return ref_or(r, UTF8_non_ascii(in, f));
}
/* RFC 5321 4.1.2 */
static ref_set Atom(const ref_in *in, ref_set f) { return ref_star(in, atext(in, f), atext); }
static ref_set dot_Atom(const ref_in *in, ref_set f) { return Atom(in, ref_ch(in, f, '.')); }
static ref_set Dot_string(const ref_in *in, ref_set f) { return ref_star(in, Atom(in, f), dot_Atom); }
/* qtextSMTP = %d32-33 / %d35-91 / %d93-126, RFC 6531 3.3: =/ UTF8-non-ascii */
static ref_set qtextSMTP(const ref_in *in, ref_set f) {
    ref_set r = ref_or(ref_range(in, f, 32, 33), ref_range(in, f, 35, 91));
    return ref_or(ref_or(r, ref_range(in, f, 93, 126)), UTF8_non_ascii(in, f));
}
/* quoted-pairSMTP = %d92 %d32-126 */
static ref_set quoted_pairSMTP(const ref_in *in, ref_set f) {
    return ref_range(in, ref_ch(in, f, 92), 32, 126);
}
static ref_set QcontentSMTP(const ref_in *in, ref_set f) {
    return ref_or(qtextSMTP(in, f), quoted_pairSMTP(in, f));
}
static ref_set Quoted_string(const ref_in *in, ref_set f) {
    return ref_ch(in, ref_star(in, ref_ch(in, f, '"'), QcontentSMTP), '"');
}
static ref_set Local_part(const ref_in *in, ref_set f) {
    return ref_or(Dot_string(in, f), Quoted_string(in, f));
}

static ref_set Let_dig(const ref_in *in, ref_set f) { return ref_or(ALPHA(in, f), DIGIT(in, f)); }
static ref_set ldh(const ref_in *in, ref_set f) { return ref_or(Let_dig(in, f), ref_ch(in, f, '-')); }
/* Ldh-str = *( ALPHA / DIGIT / "-" ) Let-dig */
static ref_set Ldh_str(const ref_in *in, ref_set f) { return Let_dig(in, ref_star(in, f, ldh)); }
/* U-label as the header says: u-char [ *(u-char / "-") u-char ] */
static ref_set u_char(const ref_in *in, ref_set f) { return ref_or(Let_dig(in, f), UTF8_non_ascii(in, f)); }
static ref_set u_ldh(const ref_in *in, ref_set f) { return ref_or(u_char(in, f), ref_ch(in, f, '-')); }
static ref_set U_label(const ref_in *in, ref_set f) {
    ref_set first = u_char(in, f);
    return ref_or(first, u_char(in, ref_star(in, first, u_ldh)));
}
/* sub-domain = Let-dig [Ldh-str], RFC 6531 3.3: =/ U-label */
static ref_set sub_domain(const ref_in *in, ref_set f) {
    ref_set ld = Let_dig(in, f);
    return ref_or(ref_or(ld, Ldh_str(in, ld)), U_label(in, f));
}
static ref_set dot_sub_domain(const ref_in *in, ref_set f) { return sub_domain(in, ref_ch(in, f, '.')); }
static ref_set Domain(const ref_in *in, ref_set f) { return ref_star(in, sub_domain(in, f), dot_sub_domain); }

/* RFC 5321 4.1.3. Snum = 1*3DIGIT "representing a decimal integer value in
   the range 0 through 255", spelt out: 1*2DIGIT / ("0" / "1") 2DIGIT /
   "2" %x30-34 DIGIT / "25" %x30-35. */
static ref_set Snum(const ref_in *in, ref_set f) {
    ref_set a = ref_rep(in, f, DIGIT, 1, 2);
    ref_set b = ref_rep(in, ref_range(in, f, '0', '1'), DIGIT, 2, 2);
    ref_set c = DIGIT(in, ref_range(in, ref_ch(in, f, '2'), '0', '4'));
    ref_set d = ref_range(in, ref_lit(in, f, "25"), '0', '5');
    return ref_or(ref_or(a, b), ref_or(c, d));
}
static ref_set dot_Snum(const ref_in *in, ref_set f) { return Snum(in, ref_ch(in, f, '.')); }
static ref_set IPv4_address_literal(const ref_in *in, ref_set f) {
    return ref_rep(in, Snum(in, f), dot_Snum, 3, 3);
}
static ref_set IPv6_hex(const ref_in *in, ref_set f) { return ref_rep(in, f, HEXDIG, 1, 4); }
static ref_set colon_hex(const ref_in *in, ref_set f) { return IPv6_hex(in, ref_ch(in, f, ':')); }
static ref_set hex_colon(const ref_in *in, ref_set f) { return ref_ch(in, IPv6_hex(in, f), ':'); }
/* k groups joined by ':' (none for k = 0) */
static ref_set groups(const ref_in *in, ref_set f, int k) {
    return k == 0 ? f : ref_rep(in, IPv6_hex(in, f), colon_hex, k - 1, k - 1);
}
/* IPv6-full = IPv6-hex 7(":" IPv6-hex)
   IPv6-comp = [IPv6-hex *5(":" IPv6-hex)] "::" [IPv6-hex *5(":" IPv6-hex)],
     "No more than 6 groups in addition to the '::'"
   IPv6v4-full = IPv6-hex 5(":" IPv6-hex) ":" IPv4-address-literal
   IPv6v4-comp = [IPv6-hex *3(":" IPv6-hex)] "::" [IPv6-hex *3(":" IPv6-hex) ":"]
     IPv4-address-literal, "No more than 4 groups in addition to the '::'
     and IPv4-address-literal" */
static ref_set IPv6_addr(const ref_in *in, ref_set f) {
    ref_set r = groups(in, f, 8);
    int a, b;
    for (a = 0; a <= 6; a++)
        for (b = 0; a + b <= 6; b++) r = ref_or(r, groups(in, ref_lit(in, groups(in, f, a), "::"), b));
    r = ref_or(r, IPv4_address_literal(in, ref_ch(in, groups(in, f, 6), ':')));
    for (a = 0; a <= 4; a++)
        for (b = 0; a + b <= 4; b++) {
            ref_set g = ref_rep(in, ref_lit(in, groups(in, f, a), "::"), hex_colon, b, b);
            r = ref_or(r, IPv4_address_literal(in, g));
        }
    return r;
}
static ref_set IPv6_address_literal(const ref_in *in, ref_set f) {
    return IPv6_addr(in, ref_lit(in, f, "IPv6:"));
}
static ref_set dcontent(const ref_in *in, ref_set f) {
    return ref_or(ref_range(in, f, 33, 90), ref_range(in, f, 94, 126));
}
/* General-address-literal = Standardized-tag ":" 1*dcontent, from every
   start but those where the tag is "IPv6" (see the top of the file). */
static ref_set General_address_literal(const ref_in *in, ref_set f) {
    size_t p;
    for (p = 0; p + 5 <= in->n; p++)
        if (ref_has(&f, p) && !ref_empty(ref_lit(in, ref_at(p), "IPv6:"))) f = ref_minus(f, ref_at(p));
    return ref_rep(in, ref_ch(in, Ldh_str(in, f), ':'), dcontent, 1, 255);
}
static ref_set address_literal(const ref_in *in, ref_set f) {
    ref_set o = ref_ch(in, f, '[');
    ref_set x = ref_or(IPv4_address_literal(in, o), IPv6_address_literal(in, o));
    return ref_ch(in, ref_or(x, General_address_literal(in, o)), ']');
}

/* 1 if addr is valid as kind (REF_RCPT, REF_MAIL, REF_MAILBOX). */
static int ref_check(const char *addr, int kind) {
    ref_in in;
    ref_set local, dom;
    size_t at;
    in.s = (const unsigned char *)addr;
    in.n = strlen(addr);
    if (in.n == 0) return kind == REF_MAIL;
    if (in.n > REF_MAX_LEN) return 0;
    if (kind == REF_RCPT && !ref_empty(ref_lit(&in, ref_at(0), "Postmaster")) && in.n == 10) return 1;
    /* Mailbox = Local-part "@" ( Domain / address-literal ), tried at every
       '@' a Local-part can end before. */
    local = Local_part(&in, ref_at(0));
    for (at = 1; at <= 64 && at < in.n; at++) {
        if (!ref_has(&local, at) || in.s[at] != '@') continue;
        dom = ref_at(at + 1);
        dom = ref_or(Domain(&in, dom), address_literal(&in, dom));
        if (ref_has(&dom, in.n)) return 1;
    }
    return 0;
}
#endif
