package ir

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Intervals is a uid set. In JSON (the state file, the worker's request) it
// is one string, "0-999,1001,1500-1999": with 100,000 accounts the list of
// objects took longer to decode than the rest of an apply.
type Intervals []Interval

// UIDRanges is a dispatch map; in JSON one string, "0-999:-1,1000:3".
type UIDRanges []UIDRange

func appendSpan(b []byte, lo, hi uint32) []byte {
	b = strconv.AppendUint(b, uint64(lo), 10)
	if hi != lo {
		b = append(b, '-')
		b = strconv.AppendUint(b, uint64(hi), 10)
	}
	return b
}

func parseSpan(s string) (lo, hi uint32, err error) {
	a, b, isRange := strings.Cut(s, "-")
	l, err := strconv.ParseUint(a, 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("uid span %q: %w", s, err)
	}
	h := l
	if isRange {
		if h, err = strconv.ParseUint(b, 10, 32); err != nil {
			return 0, 0, fmt.Errorf("uid span %q: %w", s, err)
		}
	}
	if h < l {
		return 0, 0, fmt.Errorf("uid span %q: ends before it starts", s)
	}
	return uint32(l), uint32(h), nil
}

func (ivs Intervals) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 16*len(ivs))
	for i, iv := range ivs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendSpan(b, iv.Lo, iv.Hi)
	}
	return json.Marshal(string(b))
}

func (ivs *Intervals) UnmarshalJSON(data []byte) error {
	if len(data) > 0 && data[0] != '"' { // a list of objects, as written before
		var old []Interval
		err := json.Unmarshal(data, &old)
		*ivs = old
		return err
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	*ivs = nil
	if s == "" {
		return nil
	}
	out := make(Intervals, 0, strings.Count(s, ",")+1)
	for _, part := range strings.Split(s, ",") {
		lo, hi, err := parseSpan(part)
		if err != nil {
			return err
		}
		out = append(out, Interval{Lo: lo, Hi: hi})
	}
	*ivs = out
	return nil
}

func (rs UIDRanges) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 20*len(rs))
	for i, r := range rs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendSpan(b, r.Lo, r.Hi)
		b = append(b, ':')
		b = strconv.AppendInt(b, int64(r.Profile), 10)
	}
	return json.Marshal(string(b))
}

func (rs *UIDRanges) UnmarshalJSON(data []byte) error {
	if len(data) > 0 && data[0] != '"' { // a list of objects, as written before
		var old []UIDRange
		err := json.Unmarshal(data, &old)
		*rs = old
		return err
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	*rs = nil
	if s == "" {
		return nil
	}
	out := make(UIDRanges, 0, strings.Count(s, ",")+1)
	for _, part := range strings.Split(s, ",") {
		span, prof, ok := strings.Cut(part, ":")
		if !ok {
			return fmt.Errorf("uid range %q: no profile", part)
		}
		lo, hi, err := parseSpan(span)
		if err != nil {
			return err
		}
		p, err := strconv.Atoi(prof)
		if err != nil || p < -1 {
			return fmt.Errorf("uid range %q: bad profile", part)
		}
		out = append(out, UIDRange{Lo: lo, Hi: hi, Profile: p})
	}
	*rs = out
	return nil
}
