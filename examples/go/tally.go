package main

// The consumer's rules, as docs/integrating.md states them: a record counts once (ce_id), only when it
// fits its published schema and its key is its village; a void takes back exactly what its target added
// when the catalogue's rule permits it (contracts/events.py `void_permitted`).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// loadSchemas compiles every `<event type>.json` of the published package (JSON Schema 2020-12).
// Unknown keywords such as x-topic and x-personal are annotations here; formats are asserted.
func loadSchemas(dir string) (map[string]*jsonschema.Schema, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no schemas in %s", dir)
	}
	compiler := jsonschema.NewCompiler()
	compiler.DefaultDraft(jsonschema.Draft2020)
	compiler.AssertFormat()
	schemas := map[string]*jsonschema.Schema{}
	for _, file := range files {
		absolute, err := filepath.Abs(file)
		if err != nil {
			return nil, err
		}
		raw, err := os.Open(absolute)
		if err != nil {
			return nil, err
		}
		document, err := jsonschema.UnmarshalJSON(raw)
		raw.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		location := "file://" + filepath.ToSlash(absolute)
		if err := compiler.AddResource(location, document); err != nil {
			return nil, err
		}
		schema, err := compiler.Compile(location)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		schemas[strings.TrimSuffix(filepath.Base(file), ".json")] = schema
	}
	return schemas, nil
}

var supervisingRoles = map[string]bool{
	"township_office": true, "county_bureau": true, "prefecture_bureau": true, "province_department": true,
}

type payload struct {
	VillageCode    string  `json:"village_code"`
	AdvisorID      string  `json:"advisor_id"`
	RecordedBy     *string `json:"recorded_by"`
	RecordedByRole *string `json:"recorded_by_role"`
	PersonTimes    int     `json:"person_times"`
	Severity       string  `json:"severity"`
	TargetEventID  string  `json:"target_event_id"`
}

type counted struct {
	village string
	figures map[string]int
	advisor string
	by      *string
}

type tally struct {
	schemas map[string]*jsonschema.Schema
	seen    map[string]bool
	counted map[string]counted
	figures map[string]map[string]int
	stats   map[string]int
}

func newTally(schemas map[string]*jsonschema.Schema) *tally {
	return &tally{
		schemas: schemas,
		seen:    map[string]bool{},
		counted: map[string]counted{},
		figures: map[string]map[string]int{},
		stats:   map[string]int{"read": 0, "duplicates": 0, "invalid": 0, "voids_applied": 0},
	}
}

// contributions: what one record adds to its village's tally (nothing for what is not counted).
func contributions(eventType string, data payload) map[string]int {
	switch eventType {
	case "consultation.recorded":
		return map[string]int{"consultations": 1, "consultation_person_times": data.PersonTimes}
	case "mediation.recorded":
		return map[string]int{"mediations": 1}
	case "risk.reported":
		return map[string]int{"risk_reports": 1, "risk_reports_" + data.Severity: 1}
	}
	return nil
}

func voidPermitted(voided payload, target counted) bool {
	if voided.RecordedByRole == nil || target.by == nil {
		return true
	}
	if supervisingRoles[*voided.RecordedByRole] {
		return true
	}
	if *voided.RecordedByRole == "advisor" && voided.RecordedBy != nil && *voided.RecordedBy == target.advisor {
		return true
	}
	return voided.RecordedBy != nil && *voided.RecordedBy == *target.by
}

func (t *tally) add(village string, figures map[string]int, sign int) {
	found := t.figures[village]
	if found == nil {
		found = map[string]int{}
		t.figures[village] = found
	}
	for metric, value := range figures {
		found[metric] += sign * value
	}
}

func (t *tally) valid(eventType string, value []byte) bool {
	schema, known := t.schemas[eventType]
	if !known {
		return false // a type this version of the contracts does not know: skip it
	}
	instance, err := jsonschema.UnmarshalJSON(bytes.NewReader(value))
	return err == nil && schema.Validate(instance) == nil
}

func (t *tally) apply(key string, headers map[string]string, value []byte) {
	t.stats["read"]++
	id, eventType := headers["ce_id"], headers["ce_type"]
	var data payload
	if id == "" || eventType == "" || !t.valid(eventType, value) || json.Unmarshal(value, &data) != nil ||
		key != data.VillageCode {
		t.stats["invalid"]++ // a consumer of ours would put it on its .dlq; a reader-only skips it
		return
	}
	if t.seen[id] {
		t.stats["duplicates"]++
		return
	}
	t.seen[id] = true
	if eventType == "record.voided" {
		if target, known := t.counted[data.TargetEventID]; known && voidPermitted(data, target) {
			t.add(target.village, target.figures, -1)
			delete(t.counted, data.TargetEventID)
			t.stats["voids_applied"]++
		}
		return
	}
	figures := contributions(eventType, data)
	if figures == nil {
		return
	}
	t.add(data.VillageCode, figures, 1)
	t.counted[id] = counted{village: data.VillageCode, figures: figures, advisor: data.AdvisorID, by: data.RecordedBy}
}

func (t *tally) sortedVillages() []string {
	villages := make([]string, 0, len(t.figures))
	for village := range t.figures {
		villages = append(villages, village)
	}
	sort.Strings(villages)
	return villages
}

func (t *tally) summary() map[string]int {
	summary := map[string]int{"villages": len(t.figures)}
	for name, value := range t.stats {
		summary[name] = value
	}
	return summary
}
