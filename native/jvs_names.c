/*
 * jvs_names: file names as the kernel has them (any bytes but "/" and NUL) across the
 * JavaScript boundary.
 *
 * JavaScript carries a name as a string: valid UTF-8 decodes as usual, and every byte
 * that is not part of a valid UTF-8 sequence becomes the lone low surrogate U+DC00 + byte
 * (the "surrogateescape" rule of Python's PEP 383; src/format/nameBytes.ts is the
 * JavaScript twin and the definition). Valid UTF-8 never decodes to a lone surrogate,
 * so the mapping is one-to-one: a name read here, handed to JavaScript and given back
 * reaches the kernel as the same bytes.
 *
 * N-API's own UTF-8 conversions would turn such bytes (and lone surrogates) into U+FFFD,
 * which names another file or none: every path crossing the boundary goes through
 * jvs_get_path and jvs_create_name instead. Both keep the usual case (ASCII or valid
 * UTF-8) on N-API's fast conversions.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jvs_native.h"

size_t jvs_utf8_seq(const unsigned char *s, size_t n) {
  unsigned char c = s[0];
  if (c < 0x80) return 1;
#define CONT(k) (n > (k) && (s[k] & 0xC0) == 0x80)
  if (c >= 0xC2 && c <= 0xDF) return CONT(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (n < 3) return 0;
    unsigned char lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF; /* no overlongs, no surrogates */
    return s[1] >= lo && s[1] <= hi && CONT(2) ? 3 : 0;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (n < 4) return 0;
    unsigned char lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF; /* no overlongs, nothing past U+10FFFF */
    return s[1] >= lo && s[1] <= hi && CONT(2) && CONT(3) ? 4 : 0;
  }
#undef CONT
  return 0;
}

int jvs_utf8_valid(const char *p, size_t n) {
  const unsigned char *s = (const unsigned char *)p;
  for (size_t i = 0; i < n;) {
    if (s[i] < 0x80) {
      i++;
      continue;
    }
    size_t k = jvs_utf8_seq(s + i, n - i);
    if (!k) return 0;
    i += k;
  }
  return 1;
}

int jvs_name_unit(const unsigned char *s, size_t n, size_t *used, uint16_t units[2]) {
  size_t k = jvs_utf8_seq(s, n);
  if (!k) {
    *used = 1;
    units[0] = (uint16_t)(0xDC00 + s[0]);
    return 1;
  }
  *used = k;
  uint32_t cp = k == 1 ? s[0] : k == 2 ? (uint32_t)(s[0] & 0x1F) << 6 | (s[1] & 0x3F)
              : k == 3 ? (uint32_t)(s[0] & 0x0F) << 12 | (uint32_t)(s[1] & 0x3F) << 6 | (s[2] & 0x3F)
                       : (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3F) << 12 | (uint32_t)(s[2] & 0x3F) << 6 | (s[3] & 0x3F);
  if (cp < 0x10000) {
    units[0] = (uint16_t)cp;
    return 1;
  }
  cp -= 0x10000;
  units[0] = (uint16_t)(0xD800 + (cp >> 10));
  units[1] = (uint16_t)(0xDC00 + (cp & 0x3FF));
  return 2;
}

napi_status jvs_create_name(napi_env env, const char *s, size_t len, napi_value *out) {
  if (len == NAPI_AUTO_LENGTH) len = strlen(s);
  if (jvs_utf8_valid(s, len)) return napi_create_string_utf8(env, s, len, out);
  uint16_t *u = malloc((len ? len : 1) * sizeof *u); /* at most one unit per byte */
  if (!u) return napi_generic_failure;
  size_t n = 0;
  for (size_t i = 0; i < len;) {
    size_t used;
    n += (size_t)jvs_name_unit((const unsigned char *)s + i, len - i, &used, u + n);
    i += used;
  }
  napi_status st = napi_create_string_utf16(env, (const char16_t *)u, n, out);
  free(u);
  return st;
}

/* Bytes of a UTF-16 string under the rule above (lone U+DC80..U+DCFF are raw bytes; other lone surrogates become U+FFFD, as Node.js writes them). */
static size_t units_to_bytes(const uint16_t *u, size_t n, char *out) {
  unsigned char *o = (unsigned char *)out;
  size_t w = 0;
  for (size_t i = 0; i < n; i++) {
    uint32_t c = u[i];
    if (c >= 0xD800 && c <= 0xDBFF && i + 1 < n && u[i + 1] >= 0xDC00 && u[i + 1] <= 0xDFFF) {
      c = 0x10000 + ((c - 0xD800) << 10) + (u[i + 1] - 0xDC00);
      i++;
    } else if (c >= 0xDC80 && c <= 0xDCFF) {
      o[w++] = (unsigned char)(c - 0xDC00);
      continue;
    } else if (c >= 0xD800 && c <= 0xDFFF) {
      c = 0xFFFD;
    }
    if (c < 0x80) o[w++] = (unsigned char)c;
    else if (c < 0x800) o[w++] = (unsigned char)(0xC0 | c >> 6), o[w++] = (unsigned char)(0x80 | (c & 0x3F));
    else if (c < 0x10000) {
      o[w++] = (unsigned char)(0xE0 | c >> 12);
      o[w++] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
      o[w++] = (unsigned char)(0x80 | (c & 0x3F));
    } else {
      o[w++] = (unsigned char)(0xF0 | c >> 18);
      o[w++] = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
      o[w++] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
      o[w++] = (unsigned char)(0x80 | (c & 0x3F));
    }
  }
  out[w] = 0;
  return w;
}

char *jvs_get_path(napi_env env, napi_value v, size_t *len_out) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected a string");
    return NULL;
  }
  char *buf = malloc(len + 1);
  if (!buf) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  napi_get_value_string_utf8(env, v, buf, len + 1, &len);
  /* U+FFFD in the result: the string may hold escaped bytes (or a real U+FFFD, which
     the exact conversion below writes the same way). */
  if (memmem(buf, len, "\xEF\xBF\xBD", 3)) {
    size_t n = 0;
    napi_get_value_string_utf16(env, v, NULL, 0, &n);
    uint16_t *u = malloc((n + 1) * sizeof *u);
    char *exact = malloc(3 * n + 1);
    if (!u || !exact) {
      free(u);
      free(exact);
      free(buf);
      napi_throw_error(env, "ENOMEM", "out of memory");
      return NULL;
    }
    napi_get_value_string_utf16(env, v, (char16_t *)u, n + 1, &n);
    len = units_to_bytes(u, n, exact);
    free(u);
    free(buf);
    buf = exact;
  }
  if (len_out) *len_out = len;
  return buf;
}
