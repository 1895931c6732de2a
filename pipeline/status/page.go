package status

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// The page is rendered from the same JSON document /status.json answers
// (decoded generically), through the same field paths the script uses
// when it refreshes, so what the server renders and what the script shows
// cannot drift apart. Every value goes through html/template's escaping on
// the server and through textContent (never innerHTML) in the script:
// stream names and error messages are not trusted.

// cell is one value shown on the page.
type cell struct {
	Path, Format, Raw, Text, Class string
}

type pageData struct {
	Nonce string
	Doc   map[string]any
}

func (p *Page) render(w io.Writer, snap Snapshot, nonce string) error {
	b, err := json.Marshal(snap)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	return p.tmpl.Execute(w, pageData{Nonce: nonce, Doc: doc})
}

func parseTemplate() (*template.Template, error) {
	t, err := template.New("page").Funcs(template.FuncMap{
		"f":     fieldCell,
		"get":   lookupPath,
		"spark": sparkPoints,
		"npts":  func(v any) int { a, _ := v.([]any); return len(a) },
		"list":  listOf,
		"sparkOf": func(s any, path, label string) spark {
			return spark{S: s, Path: path, Label: label}
		},
		"format": formatValue,
		"raw":    rawValue,
		"refresh": func(doc map[string]any) string {
			iv, _ := doc["interval_seconds"].(float64)
			return strconv.FormatFloat(min(max(iv, 1), 5), 'f', -1, 64)
		},
	}).Parse(pageTemplate)
	if err != nil {
		return nil, fmt.Errorf("parse the page template: %w", err)
	}
	return t, nil
}

// lookupPath resolves a dotted path ("incoming.records_total") in a
// decoded JSON value; nil when any step is missing.
func lookupPath(v any, path string) any {
	for part := range strings.SplitSeq(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[part]
	}
	return v
}

func fieldCell(obj any, path, format string) cell {
	v := lookupPath(obj, path)
	c := cell{Path: path, Format: format, Raw: rawValue(v), Text: formatValue(v, format)}
	if format == "ready" || format == "bool" {
		if b, ok := v.(bool); ok && !b {
			c.Class = "bad"
		} else if ok {
			c.Class = "ok"
		}
	}
	return c
}

// rawValue is a value as data-value carries it: numbers as JSON writes
// them, booleans and strings as they are, null as "".
func rawValue(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case float64:
		b, _ := json.Marshal(v)
		return string(b)
	case bool:
		return strconv.FormatBool(v)
	case string:
		return v
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

const none = "–"

// formatValue is the text of a value; the script's fmt does the same.
func formatValue(v any, format string) string {
	if format == "opt" { // optional text: nothing when there is none
		if v == nil {
			return ""
		}
		return fmt.Sprint(v)
	}
	if v == nil {
		return none
	}
	switch format {
	case "ready":
		if b, _ := v.(bool); b {
			return "ready"
		}
		return "not ready"
	case "bool":
		if b, _ := v.(bool); b {
			return "yes"
		}
		return "no"
	case "time":
		s, _ := v.(string)
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return s
		}
		return t.UTC().Format("2006-01-02 15:04:05") + " UTC"
	}
	f, ok := v.(float64)
	if !ok {
		if s, ok := v.(string); ok {
			if s == "" {
				return none
			}
			return s
		}
		return fmt.Sprint(v)
	}
	switch format {
	case "count":
		return group(math.Round(f))
	case "rate":
		return strconv.FormatFloat(f, 'f', 1, 64)
	case "bytes":
		return bytesText(f)
	case "bytesrate":
		return bytesText(f) + "/s"
	case "seconds":
		return secondsText(f)
	default:
		b, _ := json.Marshal(f)
		return string(b)
	}
}

// group writes an integer with thousands separators.
func group(f float64) string {
	s := strconv.FormatFloat(math.Abs(f), 'f', 0, 64)
	var b strings.Builder
	if f < 0 {
		b.WriteByte('-')
	}
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func bytesText(f float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for math.Abs(f) >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	if i == 0 {
		return strconv.FormatFloat(f, 'f', 0, 64) + " B"
	}
	return strconv.FormatFloat(f, 'f', 1, 64) + " " + units[i]
}

func secondsText(f float64) string {
	switch {
	case f < 60:
		return strconv.FormatFloat(f, 'f', 1, 64) + " s"
	case f < 3600:
		s := int64(math.Floor(f))
		return fmt.Sprintf("%dm %ds", s/60, s%60)
	case f < 86400:
		s := int64(math.Floor(f))
		return fmt.Sprintf("%dh %dm", s/3600, s%3600/60)
	default:
		s := int64(math.Floor(f))
		return fmt.Sprintf("%dd %dh", s/86400, s%86400/3600)
	}
}

// list is a list of objects shown as table rows: Cols is
// "key:format,key:format", as the script reads it from data-cols.
type list struct {
	Path, Cols string
	Rows       [][]cell
}

func listOf(obj any, path, cols string) list {
	l := list{Path: path, Cols: cols}
	items, _ := lookupPath(obj, path).([]any)
	for _, it := range items {
		var row []cell
		for c := range strings.SplitSeq(cols, ",") {
			key, format, _ := strings.Cut(c, ":")
			row = append(row, fieldCell(it, key, format))
		}
		l.Rows = append(l.Rows, row)
	}
	return l
}

// spark is a sparkline's series (the path in S) and label.
type spark struct {
	S           any
	Path, Label string
}

// Sparkline geometry, shared with the script.
const sparkW, sparkH = 160, 32

// sparkPoints is an SVG polyline's points for a series (nulls skipped),
// scaled to the box with 0 at the bottom.
func sparkPoints(v any) string {
	vals, _ := v.([]any)
	if len(vals) == 0 {
		return ""
	}
	top := 0.0
	for _, x := range vals {
		if f, ok := x.(float64); ok {
			top = max(top, f)
		}
	}
	if top <= 0 {
		top = 1
	}
	var b strings.Builder
	n, drawn := len(vals), 0
	for i, x := range vals {
		f, ok := x.(float64)
		if !ok {
			continue
		}
		px := 0.0
		if n > 1 {
			px = float64(i) * sparkW / float64(n-1)
		}
		py := sparkH - 1 - f/top*(sparkH-2)
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.FormatFloat(px, 'f', 1, 64) + "," + strconv.FormatFloat(py, 'f', 1, 64))
		drawn++
		if drawn == 1 && i == n-1 { // a lone point: a short dash ending at it, to be seen
			b.WriteString(" " + strconv.FormatFloat(max(0, px-4), 'f', 1, 64) + "," + strconv.FormatFloat(py, 'f', 1, 64))
		}
	}
	return b.String()
}
