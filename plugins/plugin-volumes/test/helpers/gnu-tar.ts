// GNU tar's flags for a volume's whole metadata, as the hosts' tar is run (volume-tar.ts): the tests make their
// reference archives with them.
export const TAR_FLAGS = ['--xattrs', '--xattrs-include=*', '--acls', '--sparse', '--numeric-owner', '--format=posix']
