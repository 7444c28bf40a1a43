/* Shared by the addon's sources (jvs_native.c, jvs_tree.c, jvs_hash.c, jvs_roothash.c). */
#ifndef JVS_NATIVE_H
#define JVS_NATIVE_H

#include <node_api.h>
#include <stddef.h>

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

/* Registers rootHash (jvs_roothash.c); called by jvs_hash_init when SHA-256 is available. */
napi_value jvs_roothash_init(napi_env env, napi_value exports);

#endif
