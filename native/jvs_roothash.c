/*
 * jvs_roothash: the payload root hash (DESIGN.md §3) of entries already hashed.
 *
 *   rootHash(fields, types, modes, sizes)
 *     fields  one string: per entry its rel, then for a file its content hash, for a
 *             symlink its target, all separated by "\0" (one JavaScript join)
 *     types   Uint8Array: 0 dir, 1 file, 2 symlink
 *     modes   Uint16Array: permission bits, already masked with 0o777
 *     sizes   Float64Array: file sizes (read for files only)
 *   returns the hex SHA-256, or null when it cannot reproduce the JavaScript text
 *           exactly (a size that is not an integer within ±2^53, a field count that does
 *           not fit the types: a "\0" inside a name); the caller then uses
 *           src/format/payloadHash.ts, which stays the definition.
 *   throws  an Error when a file has an empty content hash (as payloadRootHash does).
 *
 *   rootHashRecords(data)
 *     data    a Buffer: manifest chunks as the index stores them, concatenated
 *             (src/index/manifestCodec.ts; the layout classify parses in jvs_tree.c)
 *   returns the same hex SHA-256 as rootHash of the entries those chunks decode to, or
 *           null when the records are malformed or hold anything the decoded entries
 *           would print otherwise or make payloadRootHash throw (a file without a hash,
 *           a symlink without a target, a NUL in a name, a size that is not an integer
 *           within ±2^53): the caller then decodes and uses rootHash / payloadRootHash.
 *           A stored content hash is 32 bytes; its line holds their lowercase hex, which
 *           is what decodeEntries makes of them.
 *   Why: the index already holds the manifest in this form (a restore reads it, a
 *   snapshot has just encoded it), so the list need not be packed into a string, and
 *   the string taken apart again, to be hashed (~3 ms of CPU per 10,000 entries, while
 *   a snapshot's links want the same cores).
 *
 * Why here: for 10,000 entries the JavaScript version builds 10,000 template strings
 * and hashes every folder's name through a fresh crypto Hash object (~30 ms on a cold
 * process, docs/performance.md). Here no line is kept: order is decided from the names
 * (line_cmp), and the lines, written in order into a small staging buffer that stays in
 * cache, go to SHA-256 64 KiB at a time. Memory is the UTF-8 copy of `fields` plus 40
 * bytes per entry (a 1.3 MB text of lines for 10,000 entries cost more in page faults
 * than in writing).
 *
 * Order: lines are compared as UTF-8 bytes (memcmp, then length), which is the
 * reference's order. Lines begin with their type, so the sorted text is every dir line,
 * then every file line, then every symlink line ("dir" < "file" < "symlink"): each type
 * is sorted on its own, and only when a pass finds it out of order (a walk lists files
 * in order; folders "a" and "a-b" come out of a walk as "a", "a/x", "a-b", which lines
 * order as "a-b", "a/x", "a:" ). A line's trailing "\n" takes part in the comparison,
 * as it does in the JavaScript version.
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jvs_native.h"

#define STAGE (64 << 10)

/* One entry: its rel, and a file's content hash (hex text, or 32 bytes when Lines.bin_hash) or a symlink's target. */
typedef struct {
  const char *rel, *extra;
  uint32_t rlen, elen;
  double size;
  uint16_t mode; /* permission bits, masked with 0777 */
  uint8_t type;  /* 0 dir, 1 file, 2 symlink */
} Ent;

typedef struct {
  const Ent *e;
  int bin_hash; /* files' extra is the 32-byte hash (rootHashRecords), else its hex text */
  void *small;  /* SHA-256 of folder names and link targets */
  char *a, *b;  /* two lines, for comparisons the names alone do not decide */
} Lines;

static char *put(char *o, const char *s, size_t n) {
  memcpy(o, s, n);
  return o + n;
}

static char *put_hex(char *o, const unsigned char d[32]) {
  static const char hex[] = "0123456789abcdef";
  for (int i = 0; i < 32; i++) {
    *o++ = hex[d[i] >> 4];
    *o++ = hex[d[i] & 15];
  }
  return o;
}

/* An integer as JavaScript prints it (the caller checked |v| <= 2^53, so this is exact; -0 prints 0). */
static char *put_int(char *o, double v) {
  int64_t x = (int64_t)v;
  char tmp[24];
  int n = 0;
  uint64_t u = x < 0 ? (uint64_t)(-x) : (uint64_t)x;
  do tmp[n++] = (char)('0' + u % 10), u /= 10;
  while (u);
  if (x < 0) *o++ = '-';
  while (n) *o++ = tmp[--n];
  return o;
}

/* Writes entry i's line with its "\n" at o; returns its length (at most max_line). */
static size_t write_line(const Lines *l, size_t i, char *o) {
  static const char *prefix[3] = {"dir:", "file:", "symlink:"};
  static const size_t prefix_len[3] = {4, 5, 8};
  char *start = o;
  const Ent *e = &l->e[i];
  unsigned t = e->type, bits = e->mode;
  const char *rel = e->rel;
  size_t rl = e->rlen, n;
  o = put(o, prefix[t], prefix_len[t]);
  o = put(o, rel, rl);
  o = put(o, ":mode=0", 7); /* %04o of bits <= 0777 (masked by the caller) */
  *o++ = (char)('0' + ((bits >> 6) & 7));
  *o++ = (char)('0' + ((bits >> 3) & 7));
  *o++ = (char)('0' + (bits & 7));
  if (t == 1) {
    o = put(o, ",size=", 6);
    o = put_int(o, e->size);
    *o++ = ':';
    if (l->bin_hash) o = put_hex(o, (const unsigned char *)e->extra);
    else o = put(o, e->extra, e->elen);
  } else {
    unsigned char d[32];
    const char *what = rel + rl; /* dir: the base name; symlink: the target */
    if (t == 0) {
      while (what > rel && what[-1] != '/') what--;
      n = (size_t)(rel + rl - what);
    } else {
      what = e->extra;
      n = e->elen;
    }
    jvs_sha256_add(l->small, what, n);
    jvs_sha256_digest(l->small, d);
    *o++ = ':';
    o = put_hex(o, d);
  }
  *o++ = '\n';
  return (size_t)(o - start);
}

/*
 * Byte order of the lines of entries i and j, which have one type. The lines are
 * prefix + rel + ":mode=…", so the rels decide unless one rel is the other or a prefix
 * of it followed by ':' (a name holding ':'); then both lines are written and compared.
 */
static int line_cmp(const void *pa, const void *pb, void *arg) {
  const Lines *l = arg;
  size_t i = *(const uint32_t *)pa, j = *(const uint32_t *)pb;
  size_t li = l->e[i].rlen, lj = l->e[j].rlen;
  const unsigned char *ri = (const unsigned char *)l->e[i].rel, *rj = (const unsigned char *)l->e[j].rel;
  int c = memcmp(ri, rj, li < lj ? li : lj);
  if (c) return c;
  if (li < lj && rj[li] != ':') return ':' < rj[li] ? -1 : 1;
  if (lj < li && ri[lj] != ':') return ri[lj] < ':' ? -1 : 1;
  size_t na = write_line(l, i, l->a), nb = write_line(l, j, l->b);
  c = memcmp(l->a, l->b, na < nb ? na : nb);
  return c ? c : (na > nb) - (na < nb);
}

/*
 * The root hash of `count` entries into hex[64]: each type's lines sorted (only when a
 * pass finds them out of order) and fed to SHA-256 through a 64 KiB stage. max_line
 * bounds any one line. 0, or -1 when out of memory.
 */
static int hash_lines(const Ent *ents, size_t count, int bin_hash, size_t max_line, char hex[64]) {
  int rc = -1;
  uint32_t *idx = malloc((count ? count : 1) * sizeof *idx);
  char *stage = malloc(STAGE + max_line), *a = malloc(max_line), *b = malloc(max_line);
  void *root = jvs_sha256_begin(), *small = jvs_sha256_begin();
  if (!idx || !stage || !a || !b || !root || !small) goto done;
  Lines l = {ents, bin_hash, small, a, b};
  /* Entries by type, in entry order: dir lines sort first, then file, then symlink. */
  size_t per_type[3] = {0, 0, 0};
  for (size_t i = 0; i < count; i++) per_type[ents[i].type]++;
  size_t first[3] = {0, per_type[0], per_type[0] + per_type[1]}, next[3];
  memcpy(next, first, sizeof next);
  for (size_t i = 0; i < count; i++) idx[next[ents[i].type]++] = (uint32_t)i;
  size_t used = 0;
  for (int t = 0; t < 3; t++) {
    uint32_t *g = idx + first[t];
    size_t n = per_type[t], k = 1;
    while (k < n && line_cmp(&g[k - 1], &g[k], &l) <= 0) k++;
    if (k < n) qsort_r(g, n, sizeof *g, line_cmp, &l);
    for (k = 0; k < n; k++) {
      used += write_line(&l, g[k], stage + used);
      if (used >= STAGE) jvs_sha256_add(root, stage, used), used = 0;
    }
  }
  jvs_sha256_add(root, stage, used);
  unsigned char digest[32];
  jvs_sha256_digest(root, digest);
  put_hex(hex, digest);
  rc = 0;
done:
  jvs_sha256_free(root), jvs_sha256_free(small);
  free(idx), free(stage), free(a), free(b);
  return rc;
}

/* The longest line an entry makes: "symlink:" + rel + ":mode=0000" + ",size=" + 21 digits + ":" + (64 hex or the hash) + "\n". */
static size_t line_bound(size_t rel_and_extra) {
  return rel_and_extra + 8 + 10 + 6 + 21 + 1 + 64 + 1;
}

static int typed(napi_env env, napi_value v, napi_typedarray_type want, size_t *len, void **data) {
  napi_typedarray_type t;
  return napi_get_typedarray_info(env, v, &t, len, data, NULL, NULL) == napi_ok && t == want;
}

static napi_value root_hash(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  size_t count, nm, ns, bytes;
  uint8_t *types;
  uint16_t *modes;
  double *sizes;
  if (argc < 4 || !typed(env, argv[1], napi_uint8_array, &count, (void **)&types) ||
      !typed(env, argv[2], napi_uint16_array, &nm, (void **)&modes) ||
      !typed(env, argv[3], napi_float64_array, &ns, (void **)&sizes) || nm != count || ns != count) {
    napi_throw_type_error(env, NULL, "rootHash(fields: string, types: Uint8Array, modes: Uint16Array, sizes: Float64Array), arrays of one length");
    return NULL;
  }
  napi_value result = NULL;
  /* The names' bytes (jvs_names.c: a name that is not UTF-8 keeps its bytes, as the reference hashes them). */
  char *text = jvs_get_path(env, argv[0], &bytes);
  if (!text) return NULL;
  if (bytes >= UINT32_MAX - 1) { /* offsets are 32-bit; JavaScript takes such a list */
    free(text);
    napi_get_null(env, &result);
    return result;
  }
  Ent *ents = malloc((count ? count : 1) * sizeof *ents);
  if (!ents) goto oom;

  /* Split the fields (text[bytes] is the "\0" napi adds). */
  size_t max_line = 0, pos = 0, no_hash = SIZE_MAX;
  int fits = 1;
  for (size_t i = 0; i < count && fits; i++) {
    unsigned t = types[i];
    if (t > 2) {
      napi_throw_range_error(env, NULL, "rootHash: types must be 0 (dir), 1 (file) or 2 (symlink)");
      goto done;
    }
    Ent *e = &ents[i];
    e->type = (uint8_t)t, e->mode = modes[i] & 0777, e->size = sizes[i], e->extra = NULL, e->elen = 0;
    size_t line = 0;
    for (unsigned k = 0; k < (t ? 2u : 1u); k++) {
      if (pos > bytes) {
        fits = 0;
        break;
      }
      size_t n = strlen(text + pos);
      if (k == 0) e->rel = text + pos, e->rlen = (uint32_t)n;
      else {
        e->extra = text + pos, e->elen = (uint32_t)n;
        if (t == 1 && n == 0 && no_hash == SIZE_MAX) no_hash = i;
      }
      line += n;
      pos += n + 1;
    }
    if (t == 1) {
      double s = sizes[i];
      if (!(s >= -9007199254740992.0 && s <= 9007199254740992.0) || s != (double)(int64_t)s) fits = 0;
    }
    if (line_bound(line) > max_line) max_line = line_bound(line);
  }
  if (!fits || pos != (count ? bytes + 1 : 0)) {
    /* A "\0" inside a field, too few fields, or a size JavaScript prints otherwise. */
    napi_get_null(env, &result);
    goto done;
  }
  if (no_hash != SIZE_MAX) {
    /* As in JavaScript: the first file in entry order without a content hash. */
    size_t m = ents[no_hash].rlen + 64;
    char *msg = malloc(m);
    if (!msg) goto oom;
    snprintf(msg, m, "payload hash: file %.*s has no content hash", (int)ents[no_hash].rlen, ents[no_hash].rel);
    napi_throw_error(env, NULL, msg);
    free(msg);
    goto done;
  }
  char hex[64];
  if (hash_lines(ents, count, 0, max_line ? max_line : line_bound(0), hex)) goto oom;
  napi_create_string_latin1(env, hex, 64, &result);
  goto done;
oom:
  napi_throw_error(env, "ENOMEM", "rootHash: out of memory");
  result = NULL;
done:
  free(text), free(ents);
  return result;
}

static napi_value root_hash_records(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result = NULL;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  bool is_buffer = false;
  const unsigned char *b = NULL;
  size_t end = 0;
  if (argc < 1 || napi_is_buffer(env, argv[0], &is_buffer) != napi_ok || !is_buffer || napi_get_buffer_info(env, argv[0], (void **)&b, &end) != napi_ok) {
    napi_throw_type_error(env, NULL, "rootHashRecords(data: Buffer)");
    return NULL;
  }
  napi_get_null(env, &result);
  /* Fixed part (44 bytes: manifestCodec.ts FIXED) + a 2-byte rel length at least per record. */
  size_t cap = end / 46 + 1, count = 0, max_line = line_bound(0), o = 0;
  Ent *ents = malloc(cap * sizeof *ents);
  if (!ents) {
    napi_throw_error(env, "ENOMEM", "rootHashRecords: out of memory");
    return NULL;
  }
  while (o < end) {
    if (o + 44 > end || count == cap) goto done;
    Ent *e = &ents[count];
    uint8_t type = b[o], flags = b[o + 1];
    uint16_t mode;
    if (type > 2) goto done;
    memcpy(&mode, b + o + 2, 2);
    memcpy(&e->size, b + o + 4, 8);
    e->type = type, e->mode = mode & 0777, e->extra = NULL, e->elen = 0;
    o += 44;
    if (jvs_record_len(b, end, &o, &e->rlen)) goto done;
    e->rel = (const char *)b + o;
    o += e->rlen;
    /* The decoded rel holds a NUL: rootHash would refuse it, payloadRootHash decides. */
    if (memchr(e->rel, 0, e->rlen)) goto done;
    const char *hash = NULL, *target = NULL;
    uint32_t target_len = 0, skip;
    if (flags & 1) {
      if (o + 32 > end) goto done;
      hash = (const char *)b + o;
      o += 32;
    }
    if (flags & 2) {
      if (jvs_record_len(b, end, &o, &target_len)) goto done;
      target = (const char *)b + o;
      o += target_len;
    }
    if (flags & 4) {
      if (jvs_record_len(b, end, &o, &skip)) goto done;
      o += skip;
    }
    if (type == 1) {
      double s = e->size;
      if (!hash || !(s >= -9007199254740992.0 && s <= 9007199254740992.0) || s != (double)(int64_t)s) goto done;
      e->extra = hash, e->elen = 32;
    } else if (type == 2) {
      if (!target || memchr(target, 0, target_len)) goto done;
      e->extra = target, e->elen = target_len;
    }
    size_t line = line_bound((size_t)e->rlen + e->elen);
    if (line > max_line) max_line = line;
    count++;
  }
  char hex[64];
  if (hash_lines(ents, count, 1, max_line, hex)) {
    free(ents);
    napi_throw_error(env, "ENOMEM", "rootHashRecords: out of memory");
    return NULL;
  }
  napi_create_string_latin1(env, hex, 64, &result);
done:
  free(ents);
  return result;
}

napi_value jvs_roothash_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"rootHash", NULL, root_hash, NULL, NULL, NULL, napi_default, NULL},
    {"rootHashRecords", NULL, root_hash_records, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
