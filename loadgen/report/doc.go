// Package report renders a load result (package stats) for people and
// tools: a text summary, a CSV time series (one row per second), and one
// self-contained HTML page whose charts (gonum.org/v1/plot, inline SVG)
// show latency over time, the percentile distribution and throughput.
package report
