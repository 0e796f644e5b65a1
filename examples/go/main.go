// An integrating system in Go (the grid management system of docs/integrating.md): reads
// village-services from the beginning to the end it finds at start, as its own Kafka user; validates
// every record against the published JSON Schemas; drops duplicates by ce_id; applies voids; prints one
// JSON line per village with its tally, then a summary line on stderr.
//
//	KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:29092 VC_KAFKA_SECURITY_PROTOCOL=SASL_SSL \
//	VC_KAFKA_SASL_USERNAME=integration-grid VC_KAFKA_SASL_PASSWORD_FILE=... VC_KAFKA_CA_FILE=ca.pem \
//	VC_SCHEMA_DIR=.../package/schemas ./tally [VILLAGE_CODE ...]
//
// With village codes as arguments only those villages are printed (all are read).
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

const topic = "village-services"

func env(name, fallback string) string {
	if value, ok := os.LookupEnv(name); ok && value != "" {
		return value
	}
	return fallback
}

// clientOptions: the broker and who we are to it, from the same variables the project's services read.
func clientOptions() ([]kgo.Opt, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(strings.Split(env("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:29092"), ",")...),
		kgo.ClientID("integration-grid-tally-go"),
	}
	protocol := env("VC_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT")
	if protocol == "SSL" || protocol == "SASL_SSL" {
		config := &tls.Config{MinVersion: tls.VersionTLS12}
		if caFile := env("VC_KAFKA_CA_FILE", ""); caFile != "" {
			pem, err := os.ReadFile(caFile)
			if err != nil {
				return nil, err
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("no certificate in %s", caFile)
			}
			config.RootCAs = pool
		}
		opts = append(opts, kgo.DialTLSConfig(config))
	}
	if strings.HasPrefix(protocol, "SASL_") {
		password := env("VC_KAFKA_SASL_PASSWORD", "")
		if file := env("VC_KAFKA_SASL_PASSWORD_FILE", ""); file != "" {
			raw, err := os.ReadFile(file)
			if err != nil {
				return nil, err
			}
			password = strings.TrimSpace(string(raw))
		}
		auth := scram.Auth{User: env("VC_KAFKA_SASL_USERNAME", ""), Pass: password}
		if env("VC_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512") != "SCRAM-SHA-512" {
			return nil, errors.New("this example speaks SCRAM-SHA-512 only")
		}
		opts = append(opts, kgo.SASL(auth.AsSha512Mechanism()))
	}
	return opts, nil
}

func run(villages map[string]bool) error {
	schemaDir := env("VC_SCHEMA_DIR", "../../contracts/schemas")
	schemas, err := loadSchemas(schemaDir)
	if err != nil {
		return err
	}
	opts, err := clientOptions()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// Where the topic ends now: the tally covers everything up to here, then the program ends.
	adminClient, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	ends, err := kadm.NewClient(adminClient).ListEndOffsets(ctx, topic)
	adminClient.Close()
	if err != nil {
		return err
	}
	remaining := map[int32]int64{}
	var endErr error
	ends.Each(func(offset kadm.ListedOffset) {
		if offset.Err != nil {
			endErr = offset.Err
		} else if offset.Offset > 0 {
			remaining[offset.Partition] = offset.Offset
		}
	})
	if endErr != nil {
		return endErr
	}

	tally := newTally(schemas)
	if len(remaining) > 0 {
		// No consumer group: every partition assigned directly, from offset 0 (a long-running consumer
		// would use kgo.ConsumerGroup("integration-grid-...") and commit after applying).
		client, err := kgo.NewClient(append(opts,
			kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		)...)
		if err != nil {
			return err
		}
		defer client.Close()
		for len(remaining) > 0 {
			fetches := client.PollFetches(ctx)
			if errs := fetches.Errors(); len(errs) > 0 {
				return fmt.Errorf("fetch %s[%d]: %w", errs[0].Topic, errs[0].Partition, errs[0].Err)
			}
			fetches.EachRecord(func(record *kgo.Record) {
				end, open := remaining[record.Partition]
				if !open || record.Offset >= end {
					return
				}
				headers := map[string]string{}
				for _, header := range record.Headers {
					headers[header.Key] = string(header.Value)
				}
				tally.apply(string(record.Key), headers, record.Value)
				if record.Offset == end-1 {
					delete(remaining, record.Partition)
				}
			})
		}
	}
	out := json.NewEncoder(os.Stdout)
	for _, village := range tally.sortedVillages() {
		if len(villages) > 0 && !villages[village] {
			continue
		}
		line := map[string]any{"village": village}
		for metric, value := range tally.figures[village] {
			line[metric] = value
		}
		if err := out.Encode(line); err != nil {
			return err
		}
	}
	summary, _ := json.Marshal(tally.summary())
	fmt.Fprintln(os.Stderr, string(summary))
	return nil
}

func main() {
	villages := map[string]bool{}
	for _, code := range os.Args[1:] {
		villages[code] = true
	}
	if err := run(villages); err != nil {
		fmt.Fprintf(os.Stderr, "tally failed: %v\n", err)
		os.Exit(1)
	}
}
