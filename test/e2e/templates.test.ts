import fs from 'node:fs';
import path from 'node:path';
import ignore from 'ignore';
import { describe, expect, it } from 'vitest';
import { ROOT, jvs, jvsOk } from '../helpers/cli.js';
import { readTree, tmpDir, writeFiles } from '../helpers/tmp.js';

const TEMPLATES = path.join(ROOT, 'templates');
const templateText = (name: string) => fs.readFileSync(path.join(TEMPLATES, `${name}.jvsignore`), 'utf8');

describe('jvs init --template', () => {
  it('writes main/.jvsignore from the template, and the next snapshot honours it', () => {
    const dir = tmpDir();
    const r = jvsOk(['init', 'game', '--template', 'unity'], { cwd: dir });
    expect(r.stdout).toContain('Initialized JVS repository in');
    expect(r.stdout).toContain('from the unity template');
    const main = path.join(dir, 'game/main');
    expect(fs.readFileSync(path.join(main, '.jvsignore'), 'utf8')).toBe(templateText('unity'));

    writeFiles(main, { 'Assets/Player.prefab': 'p', 'Library/ArtifactDB': 'cache', 'ProjectSettings/ProjectVersion.txt': 'v', 'Game.csproj': 'gen' });
    const s = jvsOk(['snapshot', 'first', '--json'], { cwd: main }).json();
    const files = Object.keys(readTree(path.join(dir, 'game/.jvs/snapshots', s.snapshot_id))).filter((k) => k !== '.READY');
    expect(files.sort()).toEqual(['.jvsignore', 'Assets/', 'Assets/Player.prefab', 'ProjectSettings/', 'ProjectSettings/ProjectVersion.txt']);
  });

  it('--json reports the template used', () => {
    const dir = tmpDir();
    const r = jvsOk(['init', 'svc', '--template', 'node', '--json'], { cwd: dir }).json();
    expect(r.template).toBe('node');
    expect(fs.existsSync(path.join(dir, 'svc/main/.jvsignore'))).toBe(true);
  });

  it('without --template no .jvsignore is written', () => {
    const dir = tmpDir();
    jvsOk(['init', 'plain'], { cwd: dir });
    expect(fs.readdirSync(path.join(dir, 'plain/main'))).toEqual([]);
  });

  it('an unknown template is E_USAGE naming every available template, and creates nothing', () => {
    const dir = tmpDir();
    const r = jvs(['init', 'x', '--template', 'godot', '--json'], { cwd: dir });
    expect(r.code).toBe(2);
    const err = r.json().error;
    expect(err.class).toBe('E_USAGE');
    for (const t of ['node', 'python', 'unity', 'unreal']) expect(err.message).toContain(t);
    expect(fs.existsSync(path.join(dir, 'x'))).toBe(false);

    const human = jvs(['init', 'x', '--template', '../templates/unity'], { cwd: dir });
    expect(human.code).toBe(2);
    expect(human.stderr).toContain('unknown template');
    expect(fs.existsSync(path.join(dir, 'x'))).toBe(false);
  });
});

/** What each template must drop and must keep, checked with the matcher snapshots use. */
const EXPECT: Record<string, { ignored: string[]; kept: string[] }> = {
  unity: {
    ignored: ['Library/ArtifactDB', 'Temp/x', 'Logs/a.log', 'obj/Debug/a', 'Builds/game.exe', 'UserSettings/Layouts/a', 'Assembly-CSharp.csproj', 'Game.sln', '.vs/x'],
    kept: ['Assets/Player.prefab', 'Assets/Scenes/Main.unity', 'Assets/Scenes/Main.unity.meta', 'Packages/manifest.json', 'ProjectSettings/ProjectVersion.txt', 'Assets/Library/readme.txt'],
  },
  unreal: {
    ignored: ['Binaries/Win64/Game.exe', 'Intermediate/Build/x', 'Saved/Autosaves/a.umap', 'DerivedDataCache/a.udd', 'Plugins/Foo/Binaries/Linux/lib.so', 'Plugins/Foo/Intermediate/x', 'Game.sln'],
    kept: ['Game.uproject', 'Content/Maps/Main.umap', 'Config/DefaultEngine.ini', 'Source/Game/Game.cpp', 'Source/ThirdParty/lib/foo.lib', 'Plugins/Foo/Foo.uplugin', 'Plugins/Foo/Content/a.uasset'],
  },
  python: {
    ignored: ['pkg/__pycache__/m.cpython-312.pyc', 'pkg/m.pyc', '.venv/bin/python', 'venv/lib/x', '.pytest_cache/v', '.mypy_cache/x', 'build/lib/x', 'dist/pkg.whl', 'pkg.egg-info/PKG-INFO', 'nb/.ipynb_checkpoints/a.ipynb'],
    kept: ['pkg/m.py', 'pyproject.toml', 'data/build/part-0.parquet', 'notebooks/a.ipynb', 'requirements.txt'],
  },
  node: {
    ignored: ['node_modules/left-pad/index.js', 'packages/a/node_modules/x/i.js', 'coverage/lcov.info', '.next/cache/x', 'npm-debug.log', 'tsconfig.tsbuildinfo', '.eslintcache'],
    kept: ['package.json', 'package-lock.json', 'src/index.ts', '.yarn/releases/yarn.cjs', 'public/logo.png'],
  },
};

describe('templates/', () => {
  it('ships exactly the documented templates', () => {
    const names = fs.readdirSync(TEMPLATES).filter((f) => f.endsWith('.jvsignore')).map((f) => f.replace(/\.jvsignore$/, '')).sort();
    expect(names).toEqual(Object.keys(EXPECT).sort());
  });

  for (const [name, want] of Object.entries(EXPECT)) {
    it(`${name}.jvsignore drops regenerated files and keeps source files`, () => {
      const ig = ignore().add(templateText(name));
      // A path is dropped when it or any of its parent folders is ignored (the walk prunes folders).
      const dropped = (p: string) => {
        const parts = p.split('/');
        for (let i = 1; i < parts.length; i++) if (ig.ignores(`${parts.slice(0, i).join('/')}/`)) return true;
        return ig.ignores(p);
      };
      expect(want.ignored.filter((p) => !dropped(p))).toEqual([]);
      expect(want.kept.filter((p) => dropped(p))).toEqual([]);
    });
  }
});
