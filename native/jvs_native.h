/* Shared by the addon's sources (jvs_native.c, jvs_tree.c, jvs_hash.c). */
#ifndef JVS_NATIVE_H
#define JVS_NATIVE_H

/* The errno's symbolic name as Node.js spells it in `err.code` ("EIO" when unlisted). */
const char *jvs_errno_name(int e);

#endif
