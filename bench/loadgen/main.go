// loadgen: the benchmark's HTTP load generator for one record per request, compiled so that the client's
// own cost stays small on a machine it shares with the service it measures (bench/stages.py runs it).
//
// Input (stdin): one request per line, "<url>\t<JSON body>". Every request is a POST with the given
// bearer token; `-c` workers keep one connection each and take the next request when their answer
// arrives. Output (stdout): JSON with every latency in seconds and the count of each status.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

type request struct {
	url  string
	body []byte
}

type result struct {
	Seconds      []float64      `json:"seconds"`
	Statuses     map[string]int `json:"statuses"`
	Errors       int            `json:"errors"`
	TotalSeconds float64        `json:"total_seconds"`
}

func main() {
	concurrency := flag.Int("c", 16, "requests in flight")
	token := flag.String("token", "", "bearer token")
	flag.Parse()

	var requests []request
	scanner := bufio.NewScanner(os.Stdin)
	scanner.Buffer(make([]byte, 1<<20), 16<<20)
	for scanner.Scan() {
		url, body, found := strings.Cut(scanner.Text(), "\t")
		if !found {
			fmt.Fprintln(os.Stderr, "a line is <url>\\t<body>")
			os.Exit(2)
		}
		requests = append(requests, request{url, []byte(body)})
	}
	if err := scanner.Err(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}

	transport := &http.Transport{MaxIdleConnsPerHost: *concurrency, MaxConnsPerHost: *concurrency}
	client := &http.Client{Transport: transport, Timeout: 60 * time.Second}
	next := make(chan request)
	var mutex sync.Mutex
	found := result{Statuses: map[string]int{}}
	var workers sync.WaitGroup
	started := time.Now()
	for range *concurrency {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for item := range next {
				post, _ := http.NewRequest(http.MethodPost, item.url, bytes.NewReader(item.body))
				post.Header.Set("Content-Type", "application/json")
				post.Header.Set("Authorization", "Bearer "+*token)
				began := time.Now()
				answer, err := client.Do(post)
				if err == nil {
					_, _ = io.Copy(io.Discard, answer.Body)
					answer.Body.Close()
				}
				took := time.Since(began).Seconds()
				mutex.Lock()
				if err != nil {
					found.Errors++
				} else {
					found.Seconds = append(found.Seconds, took)
					found.Statuses[fmt.Sprint(answer.StatusCode)]++
				}
				mutex.Unlock()
			}
		}()
	}
	for _, item := range requests {
		next <- item
	}
	close(next)
	workers.Wait()
	found.TotalSeconds = time.Since(started).Seconds()
	if err := json.NewEncoder(os.Stdout).Encode(found); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
