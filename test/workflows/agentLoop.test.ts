import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { jvsOk } from '../helpers/cli.js';
import { runWorkflow } from './workflowShell.js';

/**
 * The AI-agent workflow from the users' requirements: one fork per run, each run
 * restores the baseline, writes its results and snapshots them with two tags. `main`
 * has moved past the baseline, which used to make every run fail (E_DETACHED).
 */
const SETUP = `
jvs init agents --template python
cd agents/main
mkdir -p task results
echo "def solve(x): return x" > task/solver.py
cat > agent.py <<'PY'
import argparse, json, os
p = argparse.ArgumentParser(); p.add_argument("--seed", type=int); p.add_argument("--output"); a = p.parse_args()
os.makedirs(os.path.dirname(a.output), exist_ok=True)
with open("task/solver.py", "a") as f: f.write(f"# tuned by run {a.seed}\\n")
json.dump({"seed": a.seed, "score": a.seed * 7 % 10}, open(a.output, "w"))
PY
jvs snapshot "task and agent" --tag baseline
echo "def solve(x): return x * 2" > task/solver.py
jvs snapshot "main moved on past the baseline"
`;

// The users' loop, verbatim but for the fork's folder (the seed's `cd worktrees/run-$RUN/main`
// is not our layout: `jvs worktree path` names it) and RESULT, which their agent prints.
const LOOP = `
cd agents/main
for RUN in $(seq 1 5); do
  jvs worktree fork run-$RUN
  cd "$(jvs worktree path run-$RUN)"; jvs restore baseline
  python agent.py --seed $RUN --output results/$RUN.json
  RESULT="score $(python -c "import json; print(json.load(open('results/$RUN.json'))['score'])")"
  jvs snapshot "Run $RUN: $RESULT" --tag "run-$RUN" --tag agent
  cd -
done
`;

describe('workflow: AI agents, one fork per run from the baseline', () => {
  it('runs 5 runs as written while main has moved past the baseline', () => {
    const { cwd } = runWorkflow(SETUP);
    runWorkflow(LOOP, { cwd });
    const main = path.join(cwd, 'agents/main');
    const all = jvsOk(['history', '--all', '--json'], { cwd: main }).json().snapshots as any[];
    const baseline = all.find((s) => s.tags.includes('baseline'));
    const runs = all.filter((s) => s.tags.includes('agent'));
    expect(runs).toHaveLength(5);
    for (let run = 1; run <= 5; run++) {
      const s = runs.find((x) => x.tags.includes(`run-${run}`))!;
      expect(s.note).toBe(`Run ${run}: score ${(run * 7) % 10}`);
      expect(s.tags).toEqual([`run-${run}`, 'agent']);
      expect(s.worktree_name).toBe(`run-${run}`);
      expect(s.parent_id).toBe(baseline.snapshot_id); // each run started from the baseline
      const wt = jvsOk(['worktree', 'path', `run-${run}`], { cwd: main }).stdout.trim();
      const st = jvsOk(['status', '--json', '-w', `run-${run}`], { cwd: main }).json();
      expect(st).toMatchObject({ head_snapshot_id: s.snapshot_id, latest_snapshot_id: s.snapshot_id, detached: false, clean: true });
      // Only its own result, on top of the baseline's solver (not main's newer one).
      expect(fs.readdirSync(path.join(wt, 'results'))).toEqual([`${run}.json`]);
      expect(fs.readFileSync(path.join(wt, 'task/solver.py'), 'utf8')).toBe(`def solve(x): return x\n# tuned by run ${run}\n`);
    }
    // main was not touched by the runs.
    expect(fs.readFileSync(path.join(main, 'task/solver.py'), 'utf8')).toBe('def solve(x): return x * 2\n');
    expect(jvsOk(['status', '--json'], { cwd: main }).json()).toMatchObject({ clean: true, detached: false });
    jvsOk(['verify', '--all'], { cwd: main });
  });
});
