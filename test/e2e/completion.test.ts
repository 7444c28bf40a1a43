import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { JVS_BIN, jvs, jvsOk } from '../helpers/cli.js';
import { itWith } from '../helpers/prereq.js';
import { tmpDir } from '../helpers/tmp.js';

/**
 * The completion scripts are run by the real shells: bash calls the completion
 * function as readline would (COMP_WORDS/COMP_CWORD), fish answers `complete -C`,
 * and zsh runs the script's path finder and candidate tables.
 */
function has(cmd: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? undefined : `${cmd} is not installed (apt-get install ${cmd})`;
}

function script(shell: string): string {
  const dir = tmpDir();
  const file = path.join(dir, `jvs.${shell}`);
  fs.writeFileSync(file, jvsOk(['completion', shell], { cwd: dir }).stdout);
  return file;
}

/** A repository (tags v1, v2; worktrees main, exp) and a PATH whose `jvs` is the built binary; made once per file. */
let shared: { cwd: string; env: NodeJS.ProcessEnv; dir: string } | undefined;
afterAll(() => {
  if (shared) fs.rmSync(shared.dir, { recursive: true, force: true });
});
function repoWithShim(): { cwd: string; env: NodeJS.ProcessEnv } {
  if (shared) return shared;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jvs-completion-'));
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin);
  fs.writeFileSync(path.join(bin, 'jvs'), `#!/bin/sh\nexec "${process.execPath}" "${JVS_BIN}" "$@"\n`, { mode: 0o755 });
  jvsOk(['init', 'r'], { cwd: dir });
  const main = path.join(dir, 'r/main');
  fs.writeFileSync(path.join(main, 'f'), '1');
  jvsOk(['snapshot', 'one', '--tag', 'v1'], { cwd: main });
  fs.writeFileSync(path.join(main, 'f'), '2');
  jvsOk(['snapshot', 'two', '--tag', 'v2'], { cwd: main });
  jvsOk(['worktree', 'fork', 'exp'], { cwd: main });
  shared = { cwd: main, env: { ...process.env, PATH: `${bin}:${process.env.PATH}` }, dir };
  return shared;
}

function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', cwd: opts.cwd ?? tmpDir(), ...(opts.env ? { env: opts.env } : {}) });
  if (r.status !== 0) throw new Error(`${cmd} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

/** What bash offers for the words typed so far (the last one is being completed). */
function bashComplete(file: string, typed: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): string[] {
  const words = typed.map((w) => `'${w.replace(/'/g, `'\\''`)}'`).join(' ');
  const out = run('bash', ['-c', `source '${file}'; COMP_WORDS=(${words}); COMP_CWORD=$((\${#COMP_WORDS[@]}-1)); _jvs; printf '%s\\n' "\${COMPREPLY[@]}"`], opts);
  return out.split('\n').filter(Boolean).sort();
}

const sorted = (xs: string[]) => [...xs].sort();

describe('jvs completion', () => {
  it('needs a known shell', () => {
    const dir = tmpDir();
    expect(jvs(['completion'], { cwd: dir }).code).toBe(2);
    expect(jvs(['completion', 'tcsh'], { cwd: dir }).code).toBe(2);
    expect(jvs(['completion', '--json'], { cwd: dir }).json().error.class).toBe('E_USAGE');
  });

  it('--json carries the script and the command tree it came from', () => {
    const r = jvsOk(['completion', 'fish', '--json'], { cwd: tmpDir() }).json();
    expect(r.shell).toBe('fish');
    expect(r.script).toContain('complete -c jvs');
    expect(r.commands.commands.map((c: { name: string }) => c.name)).toContain('worktree');
  });

  it('bash: commands, subcommands, options, option values and the argument after --', () => {
    const f = script('bash');
    expect(run('bash', ['-n', f])).toBe('');
    const top = bashComplete(f, ['jvs', '']);
    expect(top).toEqual(expect.arrayContaining(['init', 'snapshot', 'restore', 'worktree', 'completion']));
    expect(bashComplete(f, ['jvs', 'wor'])).toEqual(['worktree']);
    expect(bashComplete(f, ['jvs', 'worktree', ''])).toEqual(sorted(['fork', 'create', 'list', 'path', 'rename', 'remove']));
    // Global options and their values are skipped when finding the command.
    expect(bashComplete(f, ['jvs', '--json', '-w', 'main', 'worktree', 'f'])).toEqual(['fork']);
    expect(bashComplete(f, ['jvs', 'snapshot', '--t'])).toEqual(['--tag']);
    expect(bashComplete(f, ['jvs', 'snapshot', '--'])).toEqual(expect.arrayContaining(['--paths', '--json', '--help']));
    expect(bashComplete(f, ['jvs', 'init', 'g', '--template', ''])).toEqual(['node', 'python', 'unity', 'unreal']);
    expect(bashComplete(f, ['jvs', 'completion', ''])).toEqual(['bash', 'fish', 'zsh']);
    // Leaf arguments and paths after `--` fall back to file names (empty reply + -o default).
    expect(bashComplete(f, ['jvs', 'snapshot', 'note', '--', ''])).toEqual([]);
    expect(fs.readFileSync(f, 'utf8')).toContain('complete -o default -o bashdefault -F _jvs jvs');
  });

  it('--names lists worktrees, tags and refs of the repository, and nothing outside one', () => {
    const { cwd } = repoWithShim();
    expect(jvsOk(['completion', '--names', 'worktrees'], { cwd }).stdout.split('\n').filter(Boolean).sort()).toEqual(['exp', 'main']);
    expect(jvsOk(['completion', '--names', 'tags'], { cwd }).stdout).toBe('v2\nv1\n');
    expect(jvsOk(['completion', '--names', 'refs'], { cwd }).stdout).toBe('v2\nv1\nHEAD\n');
    const outside = jvs(['completion', '--names', 'refs'], { cwd: tmpDir() });
    expect([outside.code, outside.stdout, outside.stderr]).toEqual([0, '', '']);
  });

  it('bash: refs and worktree names come from the repository', () => {
    const f = script('bash');
    const o = repoWithShim();
    expect(bashComplete(f, ['jvs', 'restore', ''], o)).toEqual(['HEAD', 'v1', 'v2']);
    expect(bashComplete(f, ['jvs', 'restore', 'v'], o)).toEqual(['v1', 'v2']);
    expect(bashComplete(f, ['jvs', 'diff', 'v1', ''], o)).toEqual(['HEAD', 'v1', 'v2']);
    expect(bashComplete(f, ['jvs', '-w', ''], o)).toEqual(['exp', 'main']);
    expect(bashComplete(f, ['jvs', 'worktree', 'remove', ''], o)).toEqual(['exp', 'main']);
    expect(bashComplete(f, ['jvs', 'history', '--tag', ''], o)).toEqual(['v1', 'v2']);
    // A new worktree's name is not an existing one: nothing offered (file names as fallback).
    expect(bashComplete(f, ['jvs', 'worktree', 'fork', 'v1', ''], o)).toEqual([]);
  });

  itWith('fish', has('fish'), 'fish: complete -C offers commands, subcommands, options and values', () => {
    const f = script('fish');
    const complete = (line: string) =>
      run('fish', ['-c', `source '${f}'; complete -C '${line}'`])
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split('\t')[0]!)
        .sort();
    expect(complete('jvs ')).toEqual(expect.arrayContaining(['init', 'snapshot', 'worktree', 'completion']));
    expect(complete('jvs worktree ')).toEqual(sorted(['fork', 'create', 'list', 'path', 'rename', 'remove']));
    expect(complete('jvs --json -w main worktree f')).toEqual(['fork']);
    expect(complete('jvs snapshot --t')).toEqual(['--tag']);
    expect(complete('jvs init g --template ')).toEqual(['node', 'python', 'unity', 'unreal']);
    expect(complete('jvs completion ')).toEqual(['bash', 'fish', 'zsh']);

    const o = repoWithShim();
    const inRepo = (line: string) =>
      run('fish', ['-c', `source '${f}'; complete -C '${line}'`], o)
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split('\t')[0]!)
        .sort();
    expect(inRepo('jvs restore ')).toEqual(['HEAD', 'v1', 'v2']);
    expect(inRepo('jvs -w ')).toEqual(['exp', 'main']);
    expect(inRepo('jvs worktree path ')).toEqual(['exp', 'main']);
  });

  itWith('zsh', has('zsh'), 'zsh: the script parses, finds the command path and offers the right candidates', () => {
    const f = script('zsh');
    run('zsh', ['-n', f]);
    // compdef comes from compinit; a stand-in lets the script be sourced outside an interactive shell.
    const probe = (typed: string[]) =>
      run('zsh', [
        '-f',
        '-c',
        `compdef() { :; }; source '${f}'; words=(${typed.map((w) => `'${w}'`).join(' ')}); CURRENT=$#words; _jvs_find_path; ` +
          `_jvs_subcommands "$jvs_cmdpath"; print -r -- "$jvs_cmdpath|$jvs_dashdash|\${(j: :)\${(@)reply%%:*}}"`,
      ]).trim();
    expect(probe(['jvs', ''])).toMatch(/^\|0\|init info snapshot /);
    expect(probe(['jvs', '--json', '-w', 'main', 'worktree', 'f'])).toBe('worktree|0|fork create list path rename remove');
    expect(probe(['jvs', 'snapshot', 'x', '--', ''])).toBe('snapshot|1|');
    const table = (fn: string, arg: string) => run('zsh', ['-f', '-c', `compdef() { :; }; source '${f}'; ${fn} '${arg}'; print -r -- "\${(j:,:)\${(@)reply%%:*}}"`]).trim();
    expect(table('_jvs_options', 'snapshot')).toBe('--paths,-t,--tag,-F,--file,--compress');
    expect(table('_jvs_choices', '--compress')).toBe('none,fast,default,max');
    expect(table('_jvs_choices', '--template')).toBe('node,python,unity,unreal');
    expect(table('_jvs_argchoices', 'completion')).toBe('bash,zsh,fish');
  });

  itWith('zsh', has('zsh'), 'zsh: in a real interactive zsh (zpty + compinit), TAB lists subcommands with descriptions and option values', () => {
    const f = script('zsh');
    const o = repoWithShim();
    const typed = (line: string, until: string) => {
      const driver = path.join(tmpDir(), 'drive.zsh');
      fs.writeFileSync(
        driver,
        [
          'zmodload zsh/zpty',
          "zpty -b z 'zsh -f -i'",
          // The prompt is spelled in two pieces so the echoed command line does not match it.
          `zpty -w z "cd '${o.cwd}'; PS1='RE''ADY> '; autoload -Uz compinit; compinit -u -D; source ${f}; LISTMAX=1000"`,
          "zpty -r z setup '*READY> '", // blocks until compinit and the script are loaded
          `zpty -w -n z $'${line}\\t'`,
          // Block until the listing shows `until` (a broken script never does: the run times out).
          `zpty -r z out '*${until}*'`,
          "idle=0; while (( idle < 5 )); do if zpty -r -t z chunk; then out+=$chunk; idle=0; else sleep 0.1; (( idle++ )); fi; done",
          'print -r -- "$out"',
          'zpty -d z',
        ].join('\n'),
      );
      // Strip terminal escapes so only the listing's text is compared.
      // Generous: on a loaded 2-core machine compinit alone has taken over 30 s.
      const r = spawnSync('zsh', ['-f', driver], { encoding: 'utf8', timeout: 90_000, env: o.env });
      if (r.status !== 0) throw new Error(`no completion listing showing "${until}" for "${line}" (zsh exit ${r.status ?? r.signal}): ${r.stderr}`);
      return r.stdout.replace(/\u001b\[[0-9;]*[A-Za-z]/g, '').replace(/\r/g, '');
    };
    const wt = typed('jvs worktree ', 'rename a worktree');
    for (const s of ['fork', 'create', 'list', 'path', 'rename', 'remove']) expect(wt).toMatch(new RegExp(`${s}\\s+-- `));
    expect(wt).toContain('new worktree from a snapshot');
    const tpl = typed('jvs init g --template ', 'unreal');
    for (const s of ['node', 'python', 'unity', 'unreal']) expect(tpl).toContain(s);
    const refs = typed('jvs restore ', 'v2');
    expect(refs).toMatch(/HEAD\s+v1\s+v2/);
  }, 300_000);
});
