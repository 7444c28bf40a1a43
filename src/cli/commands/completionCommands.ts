import type { Command, Option } from 'commander';
import { listTemplates } from '../../init/templates.js';
import { usage } from '../context.js';
import type { CommandOutput, GlobalOptions } from '../output.js';

/**
 * `jvs completion bash|zsh|fish`: the scripts are generated from the live commander
 * tree, so every command and option a group registers is completed without anyone
 * keeping a list by hand. Each script finds the command path the way commander
 * parses it (skipping options and the values of options that take one) and offers
 * that command's subcommands or options. Arguments and option values that name a
 * worktree or a snapshot are completed from the repository by running
 * `jvs completion --names <kind>` (a hidden option); everything else falls back to
 * file names.
 */

export const SHELLS = ['bash', 'zsh', 'fish'] as const;
export type Shell = (typeof SHELLS)[number];

export interface OptionSpec {
  /** e.g. ['-t', '--tag'] */
  flags: string[];
  description: string;
  /** The option consumes the next word as its value. */
  takesValue: boolean;
  /** Values worth offering after the option, when they are known. */
  choices?: string[];
  /** Names to ask the repository for (`jvs completion --names <kind>`). */
  names?: NameKind;
}

export interface CommandSpec {
  name: string;
  description: string;
  options: OptionSpec[];
  /** Values offered for the first positional argument, when it has a fixed set. */
  argChoices?: string[];
  /** Per positional argument: names to ask the repository for, when it names something existing. */
  argNames?: (NameKind | null)[];
  commands: CommandSpec[];
}

export const NAME_KINDS = ['worktrees', 'refs', 'tags'] as const;
export type NameKind = (typeof NAME_KINDS)[number];

/**
 * Which arguments and option values name existing things. Arguments are matched by
 * their name in the command definition; `[name]` names an existing worktree only where
 * listed (for fork/create it is a new name).
 */
const ARG_NAMES: Record<string, NameKind> = { ref: 'refs', from: 'refs', to: 'refs', old: 'worktrees' };
const EXISTING_NAME_ARGS = new Set(['worktree path', 'worktree remove']);
const OPTION_NAMES: Record<string, NameKind> = { '--worktree': 'worktrees', '--tag': 'tags', '--latest-tag': 'tags', '--from': 'refs' };

const HELP: OptionSpec = { flags: ['-h', '--help'], description: 'display help for command', takesValue: false };

/** Values known for an option without asking a repository. */
function knownChoices(o: Option): string[] | undefined {
  if (o.argChoices?.length) return [...o.argChoices];
  if (o.long === '--template') return listTemplates();
  return undefined;
}

function commandPathOf(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

export function commandSpec(cmd: Command): CommandSpec {
  const options: OptionSpec[] = cmd.options
    .filter((o) => !o.hidden)
    .map((o) => {
      const choices = knownChoices(o);
      const names = o.required && o.long ? OPTION_NAMES[o.long] : undefined;
      return {
        flags: [o.short, o.long].filter((f): f is string => !!f),
        description: o.description,
        // An optional value (`--wait [seconds]`) is not consumed: the next word may be a command.
        takesValue: o.required,
        ...(choices ? { choices } : {}),
        ...(names && !choices ? { names } : {}),
      };
    });
  const p = commandPathOf(cmd);
  const argNames = cmd.registeredArguments.map((a) => ARG_NAMES[a.name()] ?? (a.name() === 'name' && EXISTING_NAME_ARGS.has(p) ? 'worktrees' : null));
  return {
    name: cmd.name(),
    description: cmd.description(),
    options: [...options, HELP],
    ...(cmd.registeredArguments[0]?.argChoices ? { argChoices: [...cmd.registeredArguments[0].argChoices] } : {}),
    ...(argNames.some(Boolean) ? { argNames } : {}),
    commands: cmd.commands.map(commandSpec),
  };
}

/**
 * Names for `--names <kind>`: worktree names, tags (newest first), or refs (the tags, then HEAD).
 * Outside a repository, or on any trouble, the list is empty: completion must never
 * print an error into the user's command line.
 */
export async function completionNames(kind: string, cwd: string = process.cwd()): Promise<string[]> {
  try {
    const { openRepo } = await import('../../repo/openRepo.js');
    const { layout } = openRepo(cwd);
    if (kind === 'worktrees') {
      const { listWorktrees } = await import('../../worktree/manageWorktrees.js');
      return listWorktrees(layout).map((w) => w.name);
    }
    if (kind === 'refs' || kind === 'tags') {
      const { loadDescriptors } = await import('../../repo/snapshots.js');
      const tags = loadDescriptors(layout).descriptors.reverse().flatMap((d) => d.tags ?? []);
      return [...new Set(kind === 'refs' ? [...tags, 'HEAD'] : tags)];
    }
  } catch {
    // fall through: nothing to offer
  }
  return [];
}

/** Every command path below the root ('' first), with its spec. */
function paths(root: CommandSpec): [string, CommandSpec][] {
  const out: [string, CommandSpec][] = [];
  const walk = (c: CommandSpec, p: string) => {
    out.push([p, c]);
    for (const s of c.commands) walk(s, p ? `${p} ${s.name}` : s.name);
  };
  walk(root, '');
  return out;
}

/** Single-quote for POSIX shells and zsh. */
const sq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
/** Single-quote for fish (which escapes \ and ' inside single quotes). */
const fq = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
const oneLine = (s: string) => s.replace(/\s+/g, ' ').trim();

/** One case per option flag that names something, across the whole tree (same flag, same meaning). */
function optNameCases(all: [string, CommandSpec][], fmt: (flag: string, kind: NameKind) => string): string {
  const seen = new Map<string, NameKind>();
  for (const [, c] of all) for (const o of c.options) if (o.names) for (const f of o.flags) seen.set(f, o.names);
  return [...seen].map(([f, k]) => fmt(f, k)).join('\n');
}

const flagsOf = (c: CommandSpec) => c.options.flatMap((o) => o.flags);
const valuedOf = (c: CommandSpec) => c.options.filter((o) => o.takesValue).flatMap((o) => o.flags);

export function bashScript(root: CommandSpec): string {
  const all = paths(root);
  const globals = root.options;
  const kase = (fn: (c: CommandSpec, p: string) => string[]) =>
    all
      .map(([p, c]) => [p, fn(c, p)] as const)
      .filter(([, words]) => words.length)
      .map(([p, words]) => `    ${sq(p)}) echo ${sq(words.join(' '))} ;;`)
      .join('\n');
  const choices = all
    .flatMap(([, c]) => c.options)
    .filter((o) => o.choices)
    .flatMap((o) => o.flags.map((f) => `    ${f}) COMPREPLY=($(compgen -W ${sq(o.choices!.join(' '))} -- "$cur")); return ;;`));
  const argNameCases = (fmt: (p: string, i: number, kind: NameKind) => string) =>
    all.flatMap(([p, c]) => (c.argNames ?? []).flatMap((k, i) => (k ? [fmt(p, i, k)] : []))).join('\n');
  return `# bash completion for jvs, generated by \`jvs completion bash\` from its command tree.
# Install: jvs completion bash > ~/.local/share/bash-completion/completions/jvs
# or, for this shell only: source <(jvs completion bash)

_jvs_subcommands() {
  case "$1" in
${kase((c) => c.commands.map((s) => s.name))}
  esac
}

_jvs_options() {
  case "$1" in
${kase((c, p) => (p === '' ? flagsOf(c) : flagsOf(c).filter((f) => !globals.some((g) => g.flags.includes(f)))))}
  esac
}

_jvs_valued() {
  case "$1" in
${kase((c) => valuedOf(c))}
  esac
}

_jvs_argchoices() {
  case "$1" in
${kase((c) => c.argChoices ?? [])}
  esac
}

# Names to ask the repository for: the argument at position $2 of command $1, or option $1.
_jvs_argnames() {
  case "$1 $2" in
${argNameCases((p, i, kind) => `    ${sq(`${p} ${i}`)}) echo ${kind} ;;`)}
  esac
}

_jvs_optnames() {
  case "$1" in
${optNameCases(all, (f, kind) => `    ${f}) echo ${kind} ;;`)}
  esac
}

_jvs_names() {
  command jvs completion --names "$1" 2> /dev/null
}

# Prints the command path of words 1..COMP_CWORD-1, whether \`--\` was seen, and how
# many positional arguments of that command come before the cursor.
_jvs_path() {
  local path="" word i skip=0 npos=0 globals
  globals=" $(_jvs_valued '') "
  for ((i = 1; i < COMP_CWORD; i++)); do
    word=\${COMP_WORDS[i]}
    if ((skip)); then skip=0; continue; fi
    if [[ $word == -- ]]; then printf '%s\\n%s\\n%s\\n' "$path" dashdash "$npos"; return; fi
    case "$word" in
      -*) [[ "$globals $(_jvs_valued "$path") " == *" $word "* ]] && skip=1 ;;
      *)
        if [[ " $(_jvs_subcommands "$path") " == *" $word "* ]]; then
          path="\${path:+$path }$word"; npos=0
        else
          npos=$((npos + 1))
        fi ;;
    esac
  done
  printf '%s\\n\\n%s\\n' "$path" "$npos"
}

_jvs() {
  local cur=\${COMP_WORDS[COMP_CWORD]} prev=\${COMP_WORDS[COMP_CWORD-1]} path dashdash npos kind
  COMPREPLY=()
  { IFS= read -r path; IFS= read -r dashdash; IFS= read -r npos; } < <(_jvs_path)
  [[ -n $dashdash ]] && return 0
  case "$prev" in
${choices.join('\n')}
  esac
  if [[ " $(_jvs_valued '') $(_jvs_valued "$path") " == *" $prev "* ]]; then
    kind=$(_jvs_optnames "$prev")
    [[ -n $kind ]] && COMPREPLY=($(compgen -W "$(_jvs_names "$kind")" -- "$cur"))
    return 0
  fi
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$(_jvs_options "$path") $(_jvs_options '')" -- "$cur"))
  else
    local subs
    subs="$(_jvs_subcommands "$path") $(_jvs_argchoices "$path")"
    kind=$(_jvs_argnames "$path" "$npos")
    [[ -n $kind ]] && subs="$subs $(_jvs_names "$kind")"
    [[ -n \${subs// /} ]] && COMPREPLY=($(compgen -W "$subs" -- "$cur"))
  fi
  return 0
}

complete -o default -o bashdefault -F _jvs jvs
`;
}

export function zshScript(root: CommandSpec): string {
  const all = paths(root);
  const globals = root.options;
  const describe = (name: string, description: string) => sq(`${name.replace(/:/g, '\\:')}:${oneLine(description)}`);
  const cases = (fn: (c: CommandSpec, p: string) => string[]) =>
    all
      .map(([p, c]) => [p, fn(c, p)] as const)
      .filter(([, items]) => items.length)
      .map(([p, items]) => `    ${sq(p)}) reply=(${items.join(' ')}) ;;`)
      .join('\n');
  const optionItems = (c: CommandSpec) => c.options.flatMap((o) => o.flags.map((f) => describe(f, o.description)));
  const choices = all
    .flatMap(([, c]) => c.options)
    .filter((o) => o.choices)
    .flatMap((o) => o.flags.map((f) => `    ${f}) reply=(${o.choices!.map(sq).join(' ')}) ;;`));
  return `#compdef jvs
# zsh completion for jvs, generated by \`jvs completion zsh\` from its command tree.
# Install: jvs completion zsh > ~/.zfunc/_jvs   (with ~/.zfunc in $fpath before compinit)
# or, for this shell only (after compinit): source <(jvs completion zsh)

_jvs_subcommands() {
  reply=()
  case $1 in
${cases((c) => c.commands.map((s) => describe(s.name, s.description)))}
  esac
}

_jvs_options() {
  reply=()
  case $1 in
${cases((c, p) => (p === '' ? optionItems(c) : optionItems(c).filter((item) => !globals.some((g) => g.flags.some((f) => item.startsWith(`'${f}:`))))))}
  esac
}

_jvs_valued() {
  reply=()
  case $1 in
${cases((c) => valuedOf(c))}
  esac
}

_jvs_argchoices() {
  reply=()
  case $1 in
${cases((c) => (c.argChoices ?? []).map(sq))}
  esac
}

_jvs_choices() {
  reply=()
  case $1 in
${choices.join('\n')}
  esac
}

# Names to ask the repository for: argument $2 of command $1, or option $1.
_jvs_argnames() {
  REPLY=''
  case "$1 $2" in
${all.flatMap(([p, c]) => (c.argNames ?? []).flatMap((k, i) => (k ? [`    ${sq(`${p} ${i}`)}) REPLY=${k} ;;`] : []))).join('\n')}
  esac
}

_jvs_optnames() {
  REPLY=''
  case $1 in
${optNameCases(all, (f, k) => `    ${f}) REPLY=${k} ;;`)}
  esac
}

_jvs_names() {
  reply=(\${(f)"$(command jvs completion --names $1 2> /dev/null)"})
}

# Sets jvs_cmdpath (the command path before the cursor), jvs_dashdash and jvs_npos
# (positional arguments of that command before the cursor).
_jvs_find_path() {
  local word i skip=0
  local -a valued subs
  jvs_cmdpath='' jvs_dashdash=0 jvs_npos=0
  for (( i = 2; i < CURRENT; i++ )); do
    word=\${words[i]}
    if (( skip )); then skip=0; continue; fi
    if [[ $word == -- ]]; then jvs_dashdash=1; return; fi
    if [[ $word == -* ]]; then
      _jvs_valued ''; valued=($reply); _jvs_valued "$jvs_cmdpath"; valued+=($reply)
      (( \${valued[(Ie)$word]} )) && skip=1
    else
      _jvs_subcommands "$jvs_cmdpath"; subs=(\${reply%%:*})
      if (( \${subs[(Ie)$word]} )); then
        jvs_cmdpath=\${jvs_cmdpath:+$jvs_cmdpath }$word; jvs_npos=0
      else
        (( jvs_npos++ ))
      fi
    fi
  done
}

_jvs() {
  local jvs_cmdpath jvs_dashdash jvs_npos REPLY prev=\${words[CURRENT-1]}
  local -a reply items valued
  _jvs_find_path
  if (( jvs_dashdash )); then _files; return; fi
  _jvs_choices "$prev"
  if (( \${#reply} )); then compadd -a reply; return; fi
  _jvs_valued ''; valued=($reply); _jvs_valued "$jvs_cmdpath"; valued+=($reply)
  if (( \${valued[(Ie)$prev]} )); then
    _jvs_optnames "$prev"
    if [[ -n $REPLY ]]; then _jvs_names $REPLY; compadd -a reply; else _files; fi
    return
  fi
  if [[ $PREFIX == -* ]]; then
    _jvs_options "$jvs_cmdpath"; items=($reply); _jvs_options ''; items+=($reply)
    _describe -t options 'jvs option' items
    return
  fi
  _jvs_subcommands "$jvs_cmdpath"; items=($reply)
  if (( \${#items} )); then _describe -t commands 'jvs command' items; return; fi
  _jvs_argchoices "$jvs_cmdpath"
  if (( \${#reply} )); then compadd -a reply; return; fi
  _jvs_argnames "$jvs_cmdpath" $jvs_npos
  if [[ -n $REPLY ]]; then _jvs_names $REPLY; compadd -a reply; else _files; fi
}

if [[ \${zsh_eval_context[-1]} == loadautoload ]]; then
  _jvs "$@"
else
  compdef _jvs jvs
fi
`;
}

export function fishScript(root: CommandSpec): string {
  const all = paths(root);
  const lines: string[] = [];
  const fishOpt = (o: OptionSpec, cond: string | undefined) => {
    const parts = ['complete -c jvs'];
    if (cond) parts.push(`-n ${fq(cond)}`);
    for (const f of o.flags) parts.push(f.startsWith('--') ? `-l ${f.slice(2)}` : `-s ${f.slice(1)}`);
    if (o.takesValue) parts.push(o.choices ? `-x -a ${fq(o.choices.join(' '))}` : o.names ? `-x -a ${fq(`(__jvs_names ${o.names})`)}` : '-r');
    parts.push(`-d ${fq(oneLine(o.description))}`);
    return parts.join(' ');
  };
  const subsCase = all
    .filter(([, c]) => c.commands.length)
    .map(([p, c]) => `    case ${fq(p)}\n      printf '%s\\n' ${c.commands.map((s) => fq(s.name)).join(' ')}`)
    .join('\n');
  const valuedCase = all
    .filter(([, c]) => valuedOf(c).length)
    .map(([p, c]) => `    case ${fq(p)}\n      printf '%s\\n' ${valuedOf(c).map(fq).join(' ')}`)
    .join('\n');
  const argNameCase = all
    .flatMap(([p, c]) => (c.argNames ?? []).flatMap((k, i) => (k ? [`    case ${fq(`${p} ${i}`)}\n      echo ${k}`] : [])))
    .join('\n');
  for (const kind of NAME_KINDS) lines.push(`complete -c jvs -n ${fq(`__jvs_argnames_is ${kind}`)} -f -a ${fq(`(__jvs_names ${kind})`)}`);
  for (const [p, c] of all) {
    const cond = `__jvs_at ${fq(p)}`;
    if (c.argChoices) lines.push(`complete -c jvs -n ${fq(cond)} -f -a ${fq(c.argChoices.join(' '))}`);
    for (const s of c.commands) lines.push(`complete -c jvs -n ${fq(cond)} -f -a ${fq(s.name)} -d ${fq(oneLine(s.description))}`);
    for (const o of c.options) {
      if (p !== '' && root.options.some((g) => g.flags.join() === o.flags.join())) continue;
      lines.push(fishOpt(o, p === '' ? undefined : cond));
    }
  }
  return `# fish completion for jvs, generated by \`jvs completion fish\` from its command tree.
# Install: jvs completion fish > ~/.config/fish/completions/jvs.fish

function __jvs_subcommands
  switch $argv[1]
${subsCase}
  end
end

function __jvs_valued
  switch $argv[1]
${valuedCase}
  end
end

# The command path before the cursor, as commander would parse it, then the number of
# positional arguments of that command before the cursor.
function __jvs_state
  set -l toks (commandline -opc)
  set -e toks[1]
  set -l p ''
  set -l n 0
  set -l skip 0
  for t in $toks
    if test $skip = 1
      set skip 0
      continue
    end
    if test "$t" = '--'
      break
    end
    switch $t
      case '-*'
        if contains -- $t (__jvs_valued '') (__jvs_valued "$p")
          set skip 1
        end
      case '*'
        if contains -- $t (__jvs_subcommands "$p")
          set p (string trim -- "$p $t")
          set n 0
        else
          set n (math $n + 1)
        end
    end
  end
  echo $p
  echo $n
end

function __jvs_at
  set -l s (__jvs_state)
  test "$s[1]" = "$argv[1]"
end

function __jvs_argnames
  switch "$argv[1]"
${argNameCase}
  end
end

function __jvs_argnames_is
  set -l s (__jvs_state)
  test (__jvs_argnames "$s[1] $s[2]") = "$argv[1]" 2> /dev/null
end

function __jvs_names
  command jvs completion --names $argv[1] 2> /dev/null
end

${lines.join('\n')}
`;
}

export function completionScript(shell: Shell, root: CommandSpec): string {
  return shell === 'bash' ? bashScript(root) : shell === 'zsh' ? zshScript(root) : fishScript(root);
}

export async function runCompletion(g: GlobalOptions, program: Command, shell: string | undefined, o: { names?: string } = {}): Promise<CommandOutput> {
  if (o.names !== undefined) {
    // Called by the scripts while completing: plain lines, never an error.
    const names = (NAME_KINDS as readonly string[]).includes(o.names) ? await completionNames(o.names) : [];
    return { data: { kind: o.names, names }, human: g.json ? [] : names };
  }
  if (!shell || !(SHELLS as readonly string[]).includes(shell)) {
    throw usage(`completion needs a shell: ${SHELLS.join(', ')}${shell ? ` (got ${JSON.stringify(shell)})` : ''}`, 'e.g. `jvs completion bash > ~/.local/share/bash-completion/completions/jvs`');
  }
  const spec = commandSpec(program);
  const script = completionScript(shell as Shell, spec);
  // The script ends with a newline; the printer adds one per line.
  return { data: { shell, script, commands: spec }, human: [script.replace(/\n$/, '')] };
}
