// refcheck reads a format v1 repository the way the reference JVS (Go) reads it, to
// check repositories written by our implementation from the other side: descriptors
// decoded into a struct with the reference's fields (a field it does not know would be
// dropped and break its checksum, so it is reported), checksums and audit record hashes
// recomputed through Go's encoding/json with the empty keys present, `.READY` (or
// `.READY.gz`) decoded, and payloads re-hashed, compressed ones after gunzip with the
// stored `.gz` mode. Written for the tests (test/interop/refcheck.test.ts); not part of
// the product. Prints one line per problem and exits 1 when there is any.
package main

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

type compression struct {
	Type  string `json:"type,omitempty"`
	Level int    `json:"level,omitempty"`
}

// The reference's descriptor (v7.0, with compression and partial paths).
type descriptor struct {
	SnapshotID         string       `json:"snapshot_id"`
	ParentID           *string      `json:"parent_id,omitempty"`
	WorktreeName       string       `json:"worktree_name"`
	CreatedAt          time.Time    `json:"created_at"`
	Note               string       `json:"note,omitempty"`
	Tags               []string     `json:"tags,omitempty"`
	Engine             string       `json:"engine"`
	PayloadRootHash    string       `json:"payload_root_hash"`
	DescriptorChecksum string       `json:"descriptor_checksum"`
	IntegrityState     string       `json:"integrity_state"`
	Compression        *compression `json:"compression,omitempty"`
	PartialPaths       []string     `json:"partial_paths,omitempty"`
}

type ready struct {
	SnapshotID         string    `json:"snapshot_id"`
	CompletedAt        time.Time `json:"completed_at"`
	PayloadHash        string    `json:"payload_root_hash"`
	Engine             string    `json:"engine"`
	DescriptorChecksum string    `json:"descriptor_checksum"`
}

type auditRecord struct {
	Timestamp    time.Time      `json:"timestamp"`
	EventType    string         `json:"event_type"`
	WorktreeName string         `json:"worktree_name,omitempty"`
	SnapshotID   string         `json:"snapshot_id,omitempty"`
	Details      map[string]any `json:"details,omitempty"`
	PrevHash     string         `json:"prev_hash"`
	RecordHash   string         `json:"record_hash"`
}

func canon(v any) []byte {
	raw, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	var g any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&g); err != nil {
		panic(err)
	}
	var b bytes.Buffer
	emit(&b, g)
	return b.Bytes()
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

func sum(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }

var problems []string

func report(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }

// strictDecode decodes into v and reports fields v does not have (the reference would drop them).
func strictDecode(data []byte, v any, what string) bool {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		report("%s: %v", what, err)
		return false
	}
	return true
}

func gunzip(data []byte) ([]byte, error) {
	r, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// rootHash walks a snapshot folder; with gz, files are `<name>.gz` and hashed decompressed.
func rootHash(root string, gz bool) string {
	var lines []string
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			report("walk %s: %v", p, err)
			return nil
		}
		if p == root || strings.HasPrefix(d.Name(), ".READY") {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		info, _ := os.Lstat(p)
		mode := fmt.Sprintf("%04o", info.Mode().Perm())
		switch {
		case info.Mode()&os.ModeSymlink != 0:
			t, _ := os.Readlink(p)
			lines = append(lines, fmt.Sprintf("symlink:%s:mode=%s:%s", rel, mode, sum([]byte(t))))
		case info.IsDir():
			lines = append(lines, fmt.Sprintf("dir:%s:mode=%s:%s", rel, mode, sum([]byte(d.Name()))))
		default:
			c, _ := os.ReadFile(p)
			if gz {
				if !strings.HasSuffix(rel, ".gz") {
					report("%s: a file of a compressed snapshot without .gz", p)
				} else {
					rel = strings.TrimSuffix(rel, ".gz")
					var err error
					if c, err = gunzip(c); err != nil {
						report("%s: %v", p, err)
					}
				}
			}
			lines = append(lines, fmt.Sprintf("file:%s:mode=%s,size=%d:%s", rel, mode, len(c), sum(c)))
		}
		return nil
	})
	sort.Strings(lines)
	return sum([]byte(strings.Join(lines, "\n") + "\n"))
}

func main() {
	repo := os.Args[1]
	descs, _ := filepath.Glob(filepath.Join(repo, ".jvs/descriptors/*.json"))
	for _, f := range descs {
		data, _ := os.ReadFile(f)
		var d descriptor
		if !strictDecode(data, &d, f) {
			continue
		}
		c := d
		c.DescriptorChecksum, c.IntegrityState = "", ""
		if got := sum(canon(c)); got != d.DescriptorChecksum {
			report("%s: checksum %s, the reference computes %s", d.SnapshotID, d.DescriptorChecksum, got)
		}
		dir := filepath.Join(repo, ".jvs/snapshots", d.SnapshotID)
		gz := d.Compression != nil && d.Compression.Type == "gzip"
		marker := filepath.Join(dir, ".READY")
		if gz {
			marker += ".gz"
		}
		raw, err := os.ReadFile(marker)
		if err == nil && gz {
			raw, err = gunzip(raw)
		}
		var r ready
		if err != nil {
			report("%s: %v", d.SnapshotID, err)
		} else if strictDecode(raw, &r, marker) && (r.SnapshotID != d.SnapshotID || r.DescriptorChecksum != d.DescriptorChecksum || r.PayloadHash != d.PayloadRootHash) {
			report("%s: .READY disagrees with the descriptor", d.SnapshotID)
		}
		if got := rootHash(dir, gz); got != d.PayloadRootHash {
			report("%s: payload root hash %s, computed %s", d.SnapshotID, d.PayloadRootHash, got)
		}
	}
	if data, err := os.ReadFile(filepath.Join(repo, ".jvs/audit/audit.jsonl")); err == nil {
		prev := ""
		for i, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
			var a auditRecord
			if !strictDecode([]byte(line), &a, fmt.Sprintf("audit line %d", i+1)) {
				continue
			}
			c := a
			c.RecordHash = ""
			if got := sum(canon(c)); got != a.RecordHash {
				report("audit line %d: record_hash %s, the reference computes %s", i+1, a.RecordHash, got)
			}
			if a.PrevHash != prev {
				report("audit line %d: prev_hash does not chain", i+1)
			}
			prev = a.RecordHash
		}
	}
	for _, p := range problems {
		fmt.Println(p)
	}
	fmt.Printf("checked %d descriptors\n", len(descs))
	if len(problems) > 0 {
		os.Exit(1)
	}
}
