import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { jvsOk } from '../helpers/cli.js';
import { runWorkflow } from './workflowShell.js';

/**
 * The ETL workflow from the users' requirements: every day starts from the baseline,
 * and each stage is a snapshot tagged with its stage and the day. Day two used to fail
 * with E_DETACHED; now each day's first snapshot starts a new line from the baseline.
 */
const SETUP = `
jvs init etl-pipeline
cd etl-pipeline/main
mkdir -p config
echo "source=s3://bucket/raw" > config/pipeline.ini
cat > ingest_raw.py <<'PY'
import argparse, os
p = argparse.ArgumentParser(); p.add_argument("--date", required=True); a = p.parse_args()
os.makedirs("data/raw", exist_ok=True)
with open(f"data/raw/{a.date}.csv", "w") as f:
    f.write("id,value\\n" + "".join(f"{i},{i * len(a.date)}\\n" for i in range(100)))
PY
cat > transform.py <<'PY'
import os
os.makedirs("data/processed", exist_ok=True)
for name in sorted(os.listdir("data/raw")):
    rows = open(f"data/raw/{name}").read().splitlines()[1:]
    total = sum(int(r.split(",")[1]) for r in rows)
    with open(f"data/processed/{name}.sum", "w") as f:
        f.write(f"{total}\\n")
PY
jvs snapshot "pipeline code and config" --tag baseline
`;

// The users' lines, verbatim but for the folder (theirs: /mnt/juicefs/etl-pipeline/main).
const DAY = `
cd "$REPO/etl-pipeline/main"
jvs restore baseline
python ingest_raw.py --date $TODAY;          jvs snapshot "Raw ingestion $TODAY" --tag raw --tag $TODAY
python transform.py;                         jvs snapshot "Transformed $TODAY" --tag processed --tag $TODAY
`;

describe('workflow: ETL, every day from the baseline', () => {
  it('runs two days as written; each day is its own line from the baseline and nothing is lost', () => {
    const { cwd } = runWorkflow(SETUP);
    const env = (today: string) => ({ REPO: cwd, TODAY: today });
    runWorkflow(DAY, { cwd, env: env('2026-12-01') });
    const day2 = runWorkflow(DAY, { cwd, env: env('2026-12-02') });
    expect(day2.stdout).toContain('Worktree is now in DETACHED state.');
    expect(day2.stdout).toContain('A snapshot here starts a new line from');

    const main = path.join(cwd, 'etl-pipeline/main');
    const all = jvsOk(['history', '--all', '--json'], { cwd: main }).json().snapshots as any[];
    const byNote = (n: string) => all.find((s) => s.note === n)!;
    const baseline = byNote('pipeline code and config');
    const raw1 = byNote('Raw ingestion 2026-12-01');
    const done1 = byNote('Transformed 2026-12-01');
    const raw2 = byNote('Raw ingestion 2026-12-02');
    const done2 = byNote('Transformed 2026-12-02');
    // Each day starts from the baseline; each stage follows the one before.
    expect(raw1.parent_id).toBe(baseline.snapshot_id);
    expect(raw2.parent_id).toBe(baseline.snapshot_id);
    expect(done1.parent_id).toBe(raw1.snapshot_id);
    expect(done2.parent_id).toBe(raw2.snapshot_id);
    expect(done2.tags).toEqual(['processed', '2026-12-02']);
    expect(done2.is_head && done2.is_latest).toBe(true);
    // Day one's line is kept: its tip is pinned, and its data is there.
    expect(done1.pinned).toBe(true);
    const processed2 = fs.readdirSync(path.join(main, 'data/processed'));
    expect(processed2).toEqual(['2026-12-02.csv.sum']); // day two did not see day one's files
    jvsOk(['restore', '2026-12-01'], { cwd: main });
    expect(fs.readdirSync(path.join(main, 'data/processed'))).toEqual(['2026-12-01.csv.sum']);
    expect(jvsOk(['gc', 'plan', '--json'], { cwd: main }).json().to_delete).toEqual([]);
    jvsOk(['verify', '--all'], { cwd: main });
  });
});
