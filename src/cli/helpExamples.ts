import type { Command } from 'commander';
import { listTemplates } from '../init/templates.js';

/**
 * Examples shown under `jvs <command> --help`, keyed by command path ('' is the
 * program itself). Each entry is [command line, what it does]. They are attached to
 * whatever commands are registered, so an entry for a command that is not built yet
 * shows nowhere; test/e2e/help.test.ts checks that every shown example names real
 * commands and options.
 */
export type Example = readonly [command: string, what: string];

export const EXAMPLES: Readonly<Record<string, readonly Example[]>> = {
  '': [
    ['jvs init game --template unity', 'a repository in ./game; your files go in game/main'],
    ['cd game/main && jvs snapshot "first playable" --tag v1', 'snapshot the whole worktree, tagged v1'],
    ['jvs history --limit 5', 'the five newest snapshots'],
    ['jvs restore v1', 'bring the worktree back to v1 (DETACHED: a snapshot there starts a new line)'],
    ['jvs restore HEAD', 'forward to the latest snapshot again'],
    ['jvs worktree fork v1 experiment', 'a second worktree starting at v1'],
    ['jvs -w experiment snapshot "try 1"', 'act on another worktree from anywhere in the repo'],
    ['jvs info --json', 'any command: exactly one JSON document on stdout'],
    ['jvs completion bash > ~/.local/share/bash-completion/completions/jvs', 'tab completion (also zsh, fish)'],
  ],
  init: [
    ['jvs init game', 'creates game/.jvs (history) and game/main (your files)'],
    ['jvs init game --template unity', 'also writes game/main/.jvsignore from a template'],
    ['jvs init pipeline --json', 'prints repo_root, repo_id and payload as JSON'],
    ['cd MyGame && jvs init --here --template unity', 'adopt an existing project: its files move into MyGame/main by rename'],
    ['jvs init --template unity', 'inside a repository: add the template\'s rules to this worktree\'s .jvsignore'],
  ],
  info: [
    ['jvs info', 'format, engine, snapshot and worktree counts, head'],
    ['jvs info --json', 'the same as one JSON document'],
  ],
  status: [
    ['jvs status', 'head, DETACHED or not, and files added, modified, removed since the head'],
    ['jvs status --json', 'the same as JSON'],
  ],
  snapshot: [
    ['jvs snapshot "first playable"', 'snapshot the whole worktree with a note'],
    ['jvs snapshot "release candidate" --tag rc --tag v1.2', 'tags are repeatable'],
    ['jvs snapshot -F notes.txt', 'the note from a file (-F - reads stdin)'],
    ['jvs snapshot "art pass" --paths Assets ProjectSettings', 'a partial snapshot of two folders'],
    ['jvs snapshot "art pass" -- Assets ProjectSettings', 'the same, paths after --'],
    ['jvs snapshot "nightly" --wait 60 --json', 'wait up to 60 s for another writer; print JSON'],
  ],
  history: [
    ['jvs history', 'this worktree\'s snapshots, newest first'],
    ['jvs history --limit 10 --grep "art pass"', 'notes containing "art pass" (any case)'],
    ['jvs history --tag rc', 'snapshots carrying tag rc'],
    ['jvs history --all --json', 'every snapshot of the repository, as JSON'],
  ],
  restore: [
    ['jvs restore v1', 'a tag: the newest snapshot carrying it'],
    ['jvs restore 1708300800000-a3f7', 'a unique id prefix'],
    ['jvs restore "first playable"', 'a note prefix'],
    ['jvs restore --latest-tag stable', 'the newest snapshot tagged stable'],
    ['jvs restore HEAD', 'back to the latest snapshot, leaving DETACHED state'],
    ['jvs restore baseline --dry-run', 'what would be written, removed and kept; nothing changes'],
    ['jvs restore baseline --discard-changes', 'do not keep unsaved changes as a snapshot first'],
    ['jvs restore --latest-tag unsaved', 'bring back the newest unsaved work a restore kept'],
  ],
  verify: [
    ['jvs verify', 'check the head snapshot'],
    ['jvs verify v1', 'check one snapshot'],
    ['jvs verify --all --json', 'every snapshot and the audit chain, as JSON'],
  ],
  worktree: [
    ['jvs worktree fork experiment', 'a new worktree from the current head'],
    ['jvs worktree list', 'every worktree with its head'],
    ['cd "$(jvs worktree path experiment)"', 'go to its files'],
  ],
  'worktree fork': [
    ['jvs worktree fork experiment', 'from the current head'],
    ['jvs worktree fork v1 hotfix', 'from the snapshot tagged v1'],
  ],
  'worktree create': [
    ['jvs worktree create scratch', 'an empty worktree'],
    ['jvs worktree create hotfix --from v1', 'starting at v1'],
  ],
  'worktree list': [
    ['jvs worktree list', '* marks the worktree you are in'],
    ['jvs worktree list --json', 'as JSON'],
  ],
  'worktree path': [
    ['jvs worktree path hotfix', 'print the folder holding its files'],
    ['cd "$(jvs worktree path hotfix)"', 'go there'],
  ],
  'worktree rename': [['jvs worktree rename hotfix hotfix-1.2', 'rename (its folder moves too)']],
  'worktree remove': [
    ['jvs worktree remove scratch', 'refused when it has changes not in a snapshot'],
    ['jvs worktree remove scratch --force', 'remove anyway'],
  ],
  diff: [
    ['jvs diff', 'what changed in the worktree since its head'],
    ['jvs diff v1', 'the worktree against v1'],
    ['jvs diff v1 v2 --stat', 'counts only, between two snapshots'],
    ['jvs diff v1 v2 --json', 'added, removed and modified paths as JSON'],
  ],
  doctor: [
    ['jvs doctor', 'check the repository; repairs nothing'],
    ['jvs doctor --strict', 'also re-hash every snapshot and the audit chain'],
    ['jvs doctor --repair-runtime', 'finish or roll back what a crash interrupted'],
    ['jvs doctor --repair-list', 'the repairs doctor knows'],
  ],
  gc: [
    ['jvs gc plan --keep 20', 'what may go, keeping the 20 newest of each line (deletes nothing)'],
    ['jvs gc run --plan-id <plan_id>', 'delete exactly what that plan listed'],
    ['jvs gc pin v1 --reason "shipped build"', 'keep v1 whatever the plan says'],
  ],
  'gc plan': [
    ['jvs gc plan', 'what may be deleted under the configured retention (deletes nothing)'],
    ['jvs gc plan --keep 20 --within 30d', 'keep the 20 newest of each line and the last 30 days; older ones may go'],
    ['jvs gc plan --keep 5 --include-tagged', 'tagged snapshots may go too'],
    ['jvs gc plan --json', 'the plan, with plan_id and to_delete'],
  ],
  'gc run': [['jvs gc run --plan-id <plan_id>', 'refused (E_GC_PLAN_MISMATCH) if a planned snapshot became protected since']],
  'gc pin': [
    ['jvs gc pin v1 --reason "shipped build"', 'protect v1 from gc'],
    ['jvs gc pin v1 --expires 30d', 'a pin that lapses after 30 days'],
  ],
  'gc unpin': [['jvs gc unpin v1', 'remove the pin']],
  config: [
    ['jvs config show', 'every setting with the value in force'],
    ['jvs config set default_engine copy', 'change one'],
  ],
  'config show': [['jvs config show --json', 'every setting as JSON']],
  'config get': [['jvs config get retention.keep', 'print one setting']],
  'config set': [
    ['jvs config set default_engine copy', 'always use the copy engine'],
    ['jvs config set retention.keep 50', 'values are read as YAML'],
  ],
  mount: [
    ['jvs mount ~/mnt/game', 'serve main in the foreground until Ctrl-C'],
    ['jvs -w experiment mount --daemon /mnt/exp', 'another worktree, in the background'],
  ],
  umount: [
    ['jvs umount ~/mnt/game', 'unmount'],
    ['jvs umount --lazy ~/mnt/game', 'detach now even if programs still use it'],
  ],
  completion: [
    ['jvs completion bash > ~/.local/share/bash-completion/completions/jvs', 'bash (needs the bash-completion package)'],
    ['jvs completion zsh > ~/.zfunc/_jvs', 'zsh: put ~/.zfunc in $fpath before compinit'],
    ['jvs completion fish > ~/.config/fish/completions/jvs.fish', 'fish'],
    ['source <(jvs completion bash)', 'bash, this shell only'],
  ],
};

/** A command's path below the program: '' for the program, 'worktree fork' for a subcommand. */
export function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

function render(examples: readonly Example[], extra: string[]): string {
  // A comment line above each command keeps every command copy-pasteable as is.
  const lines = examples.flatMap(([c, what]) => [`  # ${what}`, `  ${c}`]);
  return ['', 'Examples:', ...lines, ...extra].join('\n') + '\n';
}

/** Extra lines computed only when help is shown (no start-up cost). */
function extrasFor(path: string): string[] {
  if (path === 'mount')
    return [
      '',
      'Then, from any program:',
      '  echo "after the art pass" > ~/mnt/game/.jvs/ctl/snapshot   # snapshot current/',
      '  cat ~/mnt/game/.jvs/ctl/snapshot                           # the result, as JSON',
      '  ls ~/mnt/game/.jvs/snapshots/                              # every snapshot by id, tag and HEAD',
    ];
  if (path === 'init') return ['', `Templates: ${listTemplates().join(', ')}`];
  if (path === '')
    return [
      '',
      'Quick starts (in the JVS source tree): docs/quickstart-games.md, docs/quickstart-agents.md,',
      'docs/quickstart-etl.md. Exit codes and error classes: README.md.',
    ];
  return [];
}

/** Attach the examples to every registered command that has some. */
export function applyHelpExamples(program: Command): void {
  const visit = (cmd: Command) => {
    const path = commandPath(cmd);
    const examples = EXAMPLES[path];
    if (examples?.length) cmd.addHelpText('after', () => render(examples, extrasFor(path)));
    cmd.commands.forEach(visit);
  };
  visit(program);
}
