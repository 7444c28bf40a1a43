/* Shared by the addon's sources (jvs_native.c, jvs_tree.c, jvs_hash.c, jvs_roothash.c). */
#ifndef JVS_NATIVE_H
#define JVS_NATIVE_H

#include <node_api.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The errno's symbolic name as Node.js spells it in `err.code` ("EIO" when unlisted). */
const char *jvs_errno_name(int e);

/*
 * SHA-256 through the running Node.js's OpenSSL (jvs_hash.c; only valid once jvs_hash_init
 * found it). begin returns NULL when out of memory; digest writes the 32 bytes and resets
 * the context for the next message; free accepts NULL.
 */
void *jvs_sha256_begin(void);
void jvs_sha256_add(void *ctx, const void *data, size_t n);
void jvs_sha256_digest(void *ctx, unsigned char out[32]);
void jvs_sha256_free(void *ctx);

/*
 * File names across the JavaScript boundary (jvs_names.c): bytes that are not valid
 * UTF-8 travel as lone surrogates U+DC80..U+DCFF (src/format/nameBytes.ts).
 *   jvs_utf8_seq     length of the valid UTF-8 sequence at s (n bytes left; a NUL stops
 *                    it), 0 when none starts there
 *   jvs_utf8_valid   whether n bytes are valid UTF-8
 *   jvs_name_unit    the UTF-16 unit(s) of the sequence (or escaped byte) at s; returns
 *                    how many units, *used the bytes taken
 *   jvs_create_name  a JS string for a name's bytes (len may be NAPI_AUTO_LENGTH)
 *   jvs_get_path     a JS string's bytes, malloc'ed and NUL-terminated (NULL with an
 *                    exception pending)
 */
size_t jvs_utf8_seq(const unsigned char *s, size_t n);
/* A chunk record's u16 length (0xffff: a u32 follows) at *o, its bytes within end; 0, or -1 when not (jvs_tree.c). */
int jvs_record_len(const unsigned char *b, size_t end, size_t *o, uint32_t *n);
int jvs_utf8_valid(const char *s, size_t n);
int jvs_name_unit(const unsigned char *s, size_t n, size_t *used, uint16_t units[2]);
napi_status jvs_create_name(napi_env env, const char *s, size_t len, napi_value *out);
char *jvs_get_path(napi_env env, napi_value v, size_t *len_out);

/*
 * Opens `rel` below the folder fd `root` without following any symlink and without
 * leaving it (jvs_beneath.c): openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), or one
 * O_NOFOLLOW open per component where the kernel lacks openat2. A symlink on the way
 * fails with ELOOP, `..` or an absolute path with EXDEV.
 */
int jvs_open_beneath(int root, const char *rel, int flags, unsigned int mode);

/* Registers the *Beneath functions (jvs_beneath.c). */
napi_value jvs_beneath_init(napi_env env, napi_value exports);

/* Registers openFilesStart/openFilesWait (jvs_procfd.c). */
napi_value jvs_procfd_init(napi_env env, napi_value exports);

/* Registers rootHash (jvs_roothash.c); called by jvs_hash_init when SHA-256 is available. */
napi_value jvs_roothash_init(napi_env env, napi_value exports);

#endif
