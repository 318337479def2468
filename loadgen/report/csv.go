package report

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"

	"github.com/xmppcheck/xmppcheck/loadgen/stats"
)

var csvCounters = []string{stats.Scheduled, stats.Sent, stats.Completed, stats.LateStarts, stats.Errors, stats.Sessions}

// CSV writes the per-second series: counters and, per metric present in
// the result, count, p50, p90, p99 and max in microseconds.
func CSV(w io.Writer, res *stats.Result) error {
	metrics := orderedMetrics(res)
	cw := csv.NewWriter(w)
	head := []string{"unix_second", "elapsed_s"}
	head = append(head, csvCounters...)
	for _, m := range metrics {
		head = append(head, m+"_count", m+"_p50_us", m+"_p90_us", m+"_p99_us", m+"_max_us")
	}
	if err := cw.Write(head); err != nil {
		return err
	}
	var t0 int64
	if len(res.Series) > 0 {
		t0 = res.Series[0].T
	}
	for _, iv := range res.Series {
		row := []string{strconv.FormatInt(iv.T, 10), strconv.FormatInt(iv.T-t0, 10)}
		for _, c := range csvCounters {
			row = append(row, strconv.FormatInt(iv.Counters[c], 10))
		}
		for _, m := range metrics {
			enc, ok := iv.Hists[m]
			if !ok {
				row = append(row, "0", "", "", "", "")
				continue
			}
			h, err := stats.DecodeHist(enc)
			if err != nil {
				return fmt.Errorf("report: csv: %w", err)
			}
			row = append(row, strconv.FormatInt(h.TotalCount(), 10),
				strconv.FormatInt(h.ValueAtQuantile(50), 10), strconv.FormatInt(h.ValueAtQuantile(90), 10),
				strconv.FormatInt(h.ValueAtQuantile(99), 10), strconv.FormatInt(h.Max(), 10))
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
