// Package clock is the injectable clock of the reference server: the real
// wall clock for production starts, and a test clock that only moves when
// told to (Advance), so retention purges (offline.retention,
// upload.retention) can be tested in seconds.
//
// Timers scheduled with AfterFunc fire on the clock's time: on the real
// clock after the real duration, on the test clock when Advance moves time
// past their deadline. Advance runs every callback that became due before it
// returns, so a caller that advanced the clock sees the purge done.
package clock
