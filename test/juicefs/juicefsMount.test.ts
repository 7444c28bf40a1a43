import { describe, expect, it } from 'vitest';
import { isUnderMountPoint, mountOf, parseMountInfo } from '../../src/engines/juicefsMount.js';
import { juicefsMessage } from '../../src/engines/juicefsEngine.js';

// Lines in the shape the kernel writes them (proc(5)); the JuiceFS one was copied from a
// real `juicefs mount` on this machine, the others are ordinary system mounts.
const MOUNTINFO = [
  '22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw',
  '30 22 0:26 / /mnt rw,relatime shared:2 - tmpfs tmpfs rw',
  '42 30 0:39 / /mnt/jfs rw,nosuid,nodev,relatime shared:3 - fuse.juicefs JuiceFS:vol rw,user_id=0,group_id=0,default_permissions,allow_other',
  '43 30 7:0 / /mnt/jfs2 rw,relatime - xfs /dev/loop0 rw,attr2,inode64',
  '44 42 0:40 / /mnt/jfs/inner rw,relatime - tmpfs tmpfs rw',
  '45 30 0:41 / /mnt/with\\040space rw,relatime - fuse.juicefs JuiceFS:other rw',
  '',
].join('\n');

describe('JuiceFS mount detection', () => {
  const mounts = parseMountInfo(MOUNTINFO);

  it('reads mount point, fstype and source after the optional-field separator', () => {
    expect(mounts.find((m) => m.mountPoint === '/mnt/jfs')).toEqual({ mountPoint: '/mnt/jfs', fsType: 'fuse.juicefs', source: 'JuiceFS:vol' });
    expect(mounts).toHaveLength(6);
  });

  it('does not take /mnt/jfs2 to be inside /mnt/jfs (path boundary)', () => {
    expect(isUnderMountPoint('/mnt/jfs2/repo', '/mnt/jfs')).toBe(false);
    expect(mountOf(mounts, '/mnt/jfs2/repo')?.fsType).toBe('xfs');
    expect(mountOf(mounts, '/mnt/jfsx')?.fsType).toBe('tmpfs');
  });

  it('finds the JuiceFS mount for the mount point itself and paths below it', () => {
    expect(mountOf(mounts, '/mnt/jfs')?.fsType).toBe('fuse.juicefs');
    expect(mountOf(mounts, '/mnt/jfs/team/repo/.jvs/tmp')?.mountPoint).toBe('/mnt/jfs');
  });

  it('picks the longest mount point: a mount nested inside JuiceFS is not JuiceFS', () => {
    expect(mountOf(mounts, '/mnt/jfs/inner/repo')?.fsType).toBe('tmpfs');
    expect(mountOf(mounts, '/mnt/jfs/innerx')?.fsType).toBe('fuse.juicefs');
  });

  it('decodes octal escapes in mount points', () => {
    expect(mountOf(mounts, '/mnt/with space/repo')?.source).toBe('JuiceFS:other');
  });

  it('lets the later of two mounts at the same point win (it hides the earlier)', () => {
    const stacked = parseMountInfo(`${MOUNTINFO}\n50 30 0:50 / /mnt/jfs rw - ext4 /dev/sdb1 rw\n`);
    expect(mountOf(stacked, '/mnt/jfs/repo')?.fsType).toBe('ext4');
  });

  it('extracts the reason from juicefs log output', () => {
    const stderr = '2026/11/26 08:26:45.501373 juicefs[9388] <FATAL>: dst already exists [main@main.go:31]\n';
    expect(juicefsMessage(stderr)).toBe('dst already exists');
    expect(juicefsMessage('plain failure\n')).toBe('plain failure');
  });
});
