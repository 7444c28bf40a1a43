// Independent Go computation of the format's golden vectors, using Go's own
// encoding/json the way the reference implementation does (marshal, decode into
// generic values, re-encode with sorted keys). `go run ./scripts/golden <tree>`
// prints the vectors test/unit/golden.test.ts pins. Not part of the product.
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

func canon(v any) string {
	raw, _ := json.Marshal(v)
	var g any
	_ = json.Unmarshal(raw, &g)
	var b bytes.Buffer
	emit(&b, g)
	return b.String()
}

func emit(b *bytes.Buffer, v any) {
	switch x := v.(type) {
	case map[string]any:
		ks := make([]string, 0, len(x))
		for k := range x {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		b.WriteByte('{')
		for i, k := range ks {
			if i > 0 {
				b.WriteByte(',')
			}
			kb, _ := json.Marshal(k)
			b.Write(kb)
			b.WriteByte(':')
			emit(b, x[k])
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			emit(b, e)
		}
		b.WriteByte(']')
	default:
		raw, _ := json.Marshal(x)
		b.Write(raw)
	}
}

type covered struct {
	SnapshotID      string    `json:"snapshot_id"`
	ParentID        string    `json:"parent_id,omitempty"`
	WorktreeName    string    `json:"worktree_name"`
	CreatedAt       time.Time `json:"created_at"`
	Note            string    `json:"note,omitempty"`
	Tags            []string  `json:"tags,omitempty"`
	Engine          string    `json:"engine"`
	PayloadRootHash string    `json:"payload_root_hash"`
	// The checksum is taken with these two set to "": no omitempty, as in the
	// reference's descriptor struct, so both keys are part of the hashed JSON.
	DescriptorChecksum string       `json:"descriptor_checksum"`
	IntegrityState     string       `json:"integrity_state"`
	Compression        *compression `json:"compression,omitempty"`
}

type compression struct {
	Type  string `json:"type,omitempty"`
	Level int    `json:"level,omitempty"`
}

// An audit record as the reference hashes it: record_hash present and empty.
type auditRecord struct {
	Timestamp    time.Time      `json:"timestamp"`
	EventType    string         `json:"event_type"`
	WorktreeName string         `json:"worktree_name,omitempty"`
	SnapshotID   string         `json:"snapshot_id,omitempty"`
	Details      map[string]any `json:"details,omitempty"`
	PrevHash     string         `json:"prev_hash"`
	RecordHash   string         `json:"record_hash"`
}

func sum(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }

func rootHash(root string) string {
	var lines []string
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if p == root || d.Name() == ".READY" {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		info, _ := os.Lstat(p)
		mode := fmt.Sprintf("%04o", info.Mode().Perm())
		switch {
		case info.Mode()&os.ModeSymlink != 0:
			t, _ := os.Readlink(p)
			lines = append(lines, fmt.Sprintf("symlink:%s:mode=%s:%s", rel, mode, sum(t)))
		case info.IsDir():
			lines = append(lines, fmt.Sprintf("dir:%s:mode=%s:%s", rel, mode, sum(d.Name())))
		default:
			c, _ := os.ReadFile(p)
			lines = append(lines, fmt.Sprintf("file:%s:mode=%s,size=%d:%s", rel, mode, info.Size(), sum(string(c))))
		}
		return nil
	})
	sort.Strings(lines)
	return sum(strings.Join(lines, "\n") + "\n")
}

func main() {
	t1, _ := time.Parse(time.RFC3339Nano, "2026-02-28T14:03:12.5Z")
	t2, _ := time.Parse(time.RFC3339Nano, "2026-02-28T14:03:12Z")
	t3, _ := time.Parse(time.RFC3339Nano, "2026-02-28T14:03:12.120Z")
	full := covered{"1708300800000-a3f7c1b2", "1708300700000-00ff00ff", "main", t1, "fix <html> & \"quotes\"\n\u2028 naïve 日本 😀 \x01\t", []string{"v1.0", "release"}, "copy", strings.Repeat("ab", 32), "", "", nil}
	bare := covered{SnapshotID: "1708300800000-a3f7c1b2", WorktreeName: "main", CreatedAt: t2, Engine: "reflink-copy", PayloadRootHash: strings.Repeat("0", 64)}
	fmt.Printf("full_canon=%s\nfull_sum=%s\n", canon(full), sum(canon(full)))
	fmt.Printf("bare_canon=%s\nbare_sum=%s\n", canon(bare), sum(canon(bare)))
	gz := bare
	gz.Compression = &compression{"gzip", 9}
	fmt.Printf("gzip_canon=%s\ngzip_sum=%s\n", canon(gz), sum(canon(gz)))
	first := auditRecord{Timestamp: t3, EventType: "snapshot_create", WorktreeName: "main", SnapshotID: "1708300800000-a3f7c1b2", Details: map[string]any{"engine": "copy", "note": "a <b>"}}
	fmt.Printf("audit1_canon=%s\naudit1_sum=%s\n", canon(first), sum(canon(first)))
	second := auditRecord{Timestamp: t2, EventType: "gc_run", PrevHash: sum(canon(first))}
	fmt.Printf("audit2_canon=%s\naudit2_sum=%s\n", canon(second), sum(canon(second)))
	fmt.Printf("t3=%s\n", canon(map[string]any{"t": t3}))
	fmt.Printf("keys=%s\n", canon(map[string]any{"b": 1, "a": []any{true, nil, 2.5}, "\U0001F600": "x", "\uFB01": "y", "Z": "z"}))
	if len(os.Args) > 1 {
		fmt.Printf("tree=%s\n", rootHash(os.Args[1]))
	}
}
