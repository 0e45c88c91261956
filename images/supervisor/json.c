/*
 * json.c - JSON output (always valid UTF-8), base64, a minimal JSON parser and the checks
 * of request fields.
 */
#include "supervisor.h"

/* ------------------------------------------------------------------------------------------ */
/* JSON output, base64                                                                         */
/* ------------------------------------------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid.  Output must be valid
 * UTF-8 JSON even when a request smuggled arbitrary bytes into a name we echo in a message. */
size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;     /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;                      /* no overlong forms */
        if (c == 0xED)
            hi = 0x9F;                      /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        if (c == 0xF4)
            hi = 0x8F;                      /* <= U+10FFFF */
    } else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return len;
}

/* Appends s as a JSON string literal; invalid UTF-8 bytes become U+FFFD. */
void json_str(struct sb *b, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    sb_putc(b, '"');
    for (size_t i = 0; i < n;) {
        unsigned char c = u[i];
        if (c < 0x80) {
            switch (c) {
            case '"': sb_puts(b, "\\\""); break;
            case '\\': sb_puts(b, "\\\\"); break;
            case '\n': sb_puts(b, "\\n"); break;
            case '\r': sb_puts(b, "\\r"); break;
            case '\t': sb_puts(b, "\\t"); break;
            case '\b': sb_puts(b, "\\b"); break;
            case '\f': sb_puts(b, "\\f"); break;
            default:
                if (c < 0x20 || c == 0x7F)
                    sb_printf(b, "\\u%04x", c);
                else
                    sb_putc(b, (char)c);
            }
            i++;
            continue;
        }
        size_t len = utf8_len(u + i, n - i);
        if (len) {
            sb_put(b, s + i, len);
            i += len;
        } else {
            sb_puts(b, "\\ufffd");
            i++;
        }
    }
    sb_putc(b, '"');
}

void json_cstr(struct sb *b, const char *s) { json_str(b, s, strlen(s)); }

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Standard base64 with padding.  Callers encode in chunks whose length is a multiple of 3, so
 * padding only ever appears at the very end. */
void base64_encode(struct sb *b, const unsigned char *p, size_t n)
{
    sb_reserve(b, (n + 2) / 3 * 4);
    char *o = b->p + b->n;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = B64[v >> 18];
        *o++ = B64[(v >> 12) & 63];
        *o++ = B64[(v >> 6) & 63];
        *o++ = B64[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
        *o++ = B64[v >> 18];
        *o++ = B64[(v >> 12) & 63];
        *o++ = i + 1 < n ? B64[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    b->n = (size_t)(o - b->p);
    b->p[b->n] = '\0';
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Decodes standard base64 (padding optional, ASCII whitespace ignored) into a new buffer.
 * Returns false on any other character or an impossible length. */
bool base64_decode(const char *s, size_t n, unsigned char **out, size_t *outlen)
{
    unsigned char *o = xmalloc(n / 4 * 3 + 3);
    size_t k = 0, syms = 0;
    uint32_t acc = 0;
    bool padding = false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
            continue;
        if (c == '=') {
            padding = true;
            continue;
        }
        int v = b64_value(c);
        if (v < 0 || padding)               /* data after padding is malformed */
            goto bad;
        acc = acc << 6 | (uint32_t)v;
        if (++syms % 4 == 0) {
            o[k++] = (unsigned char)(acc >> 16);
            o[k++] = (unsigned char)(acc >> 8);
            o[k++] = (unsigned char)acc;
            acc = 0;
        }
    }
    switch (syms % 4) {
    case 1:
        goto bad;
    case 2:
        o[k++] = (unsigned char)(acc >> 4);
        break;
    case 3:
        o[k++] = (unsigned char)(acc >> 10);
        o[k++] = (unsigned char)(acc >> 2);
        break;
    }
    *out = o;
    *outlen = k;
    return true;
bad:
    free(o);
    return false;
}

/* ------------------------------------------------------------------------------------------ */
/* Minimal JSON parser                                                                         */
/* ------------------------------------------------------------------------------------------ */
/* Builds a small tree in an arena that is thrown away after each request.  Supports the whole
 * JSON grammar (so unknown fields of any shape can be skipped) with a nesting limit. */

void *arena_alloc(struct arena *a, size_t n)
{
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    struct arena_chunk *c = a->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > ((size_t)32 << 10) ? n : ((size_t)32 << 10);
        c = xmalloc(sizeof *c + cap);
        c->next = a->head;
        c->used = 0;
        c->cap = cap;
        a->head = c;
    }
    void *p = (char *)c->data + c->used;
    c->used += n;
    return p;
}

void arena_free(struct arena *a)
{
    while (a->head) {
        struct arena_chunk *next = a->head->next;
        free(a->head);
        a->head = next;
    }
}

struct parser {
    const char *p, *end;
    struct arena *a;
    const char *err;
    int depth;
};

static void skip_ws(struct parser *ps)
{
    while (ps->p < ps->end &&
           (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Reads the 4 hex digits of a \u escape at ps->p (just after "\u"). */
static bool parse_hex4(struct parser *ps, unsigned *out)
{
    if (ps->end - ps->p < 4)
        return false;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(ps->p[i]);
        if (h < 0)
            return false;
        v = v << 4 | (unsigned)h;
    }
    ps->p += 4;
    *out = v;
    return true;
}

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12);
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18);
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* ps->p is at the opening quote.  The decoded text is never longer than the raw text (an escape
 * of 6 or 12 characters yields at most 4 bytes), so one allocation of the raw length suffices. */
static bool parse_string(struct parser *ps, const char **out, size_t *outlen)
{
    const char *q = ++ps->p;
    while (q < ps->end && *q != '"')
        q += (*q == '\\') ? 2 : 1;
    if (q >= ps->end) {
        ps->err = "unterminated string";
        return false;
    }
    char *buf = arena_alloc(ps->a, (size_t)(q - ps->p) + 1);
    size_t k = 0;
    while (*ps->p != '"') {
        unsigned char c = (unsigned char)*ps->p;
        if (c < 0x20) {
            ps->err = "control character in string";
            return false;
        }
        if (c != '\\') {
            buf[k++] = (char)c;
            ps->p++;
            continue;
        }
        ps->p++;
        char e = *ps->p++;
        switch (e) {
        case '"': buf[k++] = '"'; break;
        case '\\': buf[k++] = '\\'; break;
        case '/': buf[k++] = '/'; break;
        case 'b': buf[k++] = '\b'; break;
        case 'f': buf[k++] = '\f'; break;
        case 'n': buf[k++] = '\n'; break;
        case 'r': buf[k++] = '\r'; break;
        case 't': buf[k++] = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (!parse_hex4(ps, &cp)) {
                ps->err = "invalid \\u escape";
                return false;
            }
            if (cp >= 0xDC00 && cp <= 0xDFFF) {
                ps->err = "unpaired surrogate in \\u escape";
                return false;
            }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (ps->end - ps->p < 2 || ps->p[0] != '\\' || ps->p[1] != 'u') {
                    ps->err = "unpaired surrogate in \\u escape";
                    return false;
                }
                ps->p += 2;
                if (!parse_hex4(ps, &lo) || lo < 0xDC00 || lo > 0xDFFF) {
                    ps->err = "unpaired surrogate in \\u escape";
                    return false;
                }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            k += put_utf8(buf + k, cp);
            break;
        }
        default:
            ps->err = "invalid escape in string";
            return false;
        }
    }
    ps->p++;                                /* closing quote */
    buf[k] = '\0';
    *out = buf;
    *outlen = k;
    return true;
}

static bool parse_number(struct parser *ps, struct jval *v)
{
    const char *p = ps->p;
    bool neg = false, integral = true, overflow = false;
    uint64_t acc = 0;
    if (p < ps->end && *p == '-') {
        neg = true;
        p++;
    }
    if (p >= ps->end || *p < '0' || *p > '9')
        goto bad;
    if (*p == '0') {
        p++;
    } else {
        while (p < ps->end && *p >= '0' && *p <= '9') {
            unsigned d = (unsigned)(*p - '0');
            if (acc > (UINT64_MAX - d) / 10)
                overflow = true;
            else
                acc = acc * 10 + d;
            p++;
        }
    }
    if (p < ps->end && *p == '.') {
        integral = false;
        p++;
        if (p >= ps->end || *p < '0' || *p > '9')
            goto bad;
        while (p < ps->end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < ps->end && (*p == 'e' || *p == 'E')) {
        integral = false;
        p++;
        if (p < ps->end && (*p == '+' || *p == '-'))
            p++;
        if (p >= ps->end || *p < '0' || *p > '9')
            goto bad;
        while (p < ps->end && *p >= '0' && *p <= '9')
            p++;
    }
    ps->p = p;
    v->type = J_NUM;
    if (integral && !overflow) {
        if (!neg && acc <= (uint64_t)INT64_MAX) {
            v->is_int = true;
            v->i = (int64_t)acc;
        } else if (neg && acc <= (uint64_t)INT64_MAX + 1) {
            v->is_int = true;
            v->i = acc == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)acc;
        }
    }
    return true;
bad:
    ps->err = "invalid number";
    return false;
}

static bool parse_literal(struct parser *ps, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0) {
        ps->err = "invalid literal";
        return false;
    }
    ps->p += n;
    return true;
}

static struct jval *parse_value(struct parser *ps);

/* Arrays and objects share this: elements are linked in order, members carry their key. */
static bool parse_container(struct parser *ps, struct jval *v, bool object)
{
    char close = object ? '}' : ']';
    if (++ps->depth > JSON_MAX_DEPTH) {
        ps->err = "nesting too deep";
        return false;
    }
    v->type = object ? J_OBJ : J_ARR;
    ps->p++;                                /* '{' or '[' */
    skip_ws(ps);
    struct jval **tail = &v->child;
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        ps->depth--;
        return true;
    }
    for (;;) {
        const char *key = NULL;
        size_t keylen = 0;
        skip_ws(ps);
        if (object) {
            if (ps->p >= ps->end || *ps->p != '"') {
                ps->err = "expected a member name";
                return false;
            }
            if (!parse_string(ps, &key, &keylen))
                return false;
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':') {
                ps->err = "expected ':'";
                return false;
            }
            ps->p++;
        }
        struct jval *item = parse_value(ps);
        if (!item)
            return false;
        item->key = key;
        item->keylen = keylen;
        *tail = item;
        tail = &item->next;
        v->count++;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == close) {
            ps->p++;
            ps->depth--;
            return true;
        }
        ps->err = object ? "expected ',' or '}'" : "expected ',' or ']'";
        return false;
    }
}

static struct jval *parse_value(struct parser *ps)
{
    skip_ws(ps);
    if (ps->p >= ps->end) {
        ps->err = "unexpected end of input";
        return NULL;
    }
    struct jval *v = arena_alloc(ps->a, sizeof *v);
    memset(v, 0, sizeof *v);
    bool ok;
    switch (*ps->p) {
    case '{': ok = parse_container(ps, v, true); break;
    case '[': ok = parse_container(ps, v, false); break;
    case '"':
        v->type = J_STR;
        ok = parse_string(ps, &v->s, &v->n);
        break;
    case 't':
        v->type = J_BOOL;
        v->b = true;
        ok = parse_literal(ps, "true");
        break;
    case 'f':
        v->type = J_BOOL;
        ok = parse_literal(ps, "false");
        break;
    case 'n':
        v->type = J_NULL;
        ok = parse_literal(ps, "null");
        break;
    default:
        ok = parse_number(ps, v);
    }
    return ok ? v : NULL;
}

/* Parses one whole document; returns NULL and sets *err on malformed input. */
struct jval *json_parse(const char *s, size_t n, struct arena *a, const char **err)
{
    struct parser ps = {.p = s, .end = s + n, .a = a, .err = NULL, .depth = 0};
    struct jval *v = parse_value(&ps);
    if (v) {
        skip_ws(&ps);
        if (ps.p != ps.end) {
            ps.err = "trailing characters after the JSON value";
            v = NULL;
        }
    }
    *err = ps.err ? ps.err : "invalid JSON";
    return v;
}

/* The member named key (the last one if repeated), or NULL.  JSON null counts as absent. */
const struct jval *member(const struct jval *obj, const char *key)
{
    size_t kl = strlen(key);
    const struct jval *found = NULL;
    for (const struct jval *c = obj->child; c; c = c->next)
        if (c->keylen == kl && memcmp(c->key, key, kl) == 0)
            found = c;
    if (found && found->type == J_NULL)
        return NULL;
    return found;
}

/* ------------------------------------------------------------------------------------------ */
/* Request field validation                                                                    */
/* ------------------------------------------------------------------------------------------ */

char g_reqerr[512];

bool fail_field(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_reqerr, sizeof g_reqerr, fmt, ap);
    va_end(ap);
    return false;
}

bool get_int(const struct jval *req, const char *key, bool required, int64_t dflt,
                    int64_t lo, int64_t hi, int64_t *out)
{
    const struct jval *v = member(req, key);
    if (!v) {
        if (required)
            return fail_field("missing field '%s'", key);
        *out = dflt;
        return true;
    }
    if (v->type != J_NUM || !v->is_int || v->i < lo || v->i > hi)
        return fail_field("field '%s' must be an integer from %lld to %lld", key,
                          (long long)lo, (long long)hi);
    *out = v->i;
    return true;
}

/* A string field without NUL bytes (they could not be passed to the kernel). */
bool get_str(const struct jval *req, const char *key, bool required, const char **out)
{
    const struct jval *v = member(req, key);
    if (!v) {
        if (required)
            return fail_field("missing field '%s'", key);
        *out = "";
        return true;
    }
    if (v->type != J_STR || strlen(v->s) != v->n)
        return fail_field("field '%s' must be a string without NUL characters", key);
    *out = v->s;
    return true;
}

/* "/box/<name>": the name is always taken relative to /box, even with a leading slash. */
const char *box_path(struct arena *a, const char *name)
{
    size_t n = strlen(name);
    char *p = arena_alloc(a, sizeof BOX_DIR + 1 + n);
    memcpy(p, BOX_DIR "/", sizeof BOX_DIR);
    memcpy(p + sizeof BOX_DIR, name, n + 1);
    return p;
}
