// Package stats records the load generator's measurements — HDR latency
// histograms (github.com/HdrHistogram/hdrhistogram-go), counters, errors by
// kind and a per-second series — and holds the result format that the JSON
// output stores and `xmppcheck load merge` combines exactly: histograms are
// kept raw (HdrHistogram V2 compressed encoding), so merging shards adds
// counts bucket by bucket instead of averaging percentiles.
package stats
