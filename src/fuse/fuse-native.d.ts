// fuse-native ships no types; only fuseAdapter.ts touches it.
declare module 'fuse-native';
