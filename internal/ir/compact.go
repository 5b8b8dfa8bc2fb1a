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
	return encodeList(len(ivs), func(b []byte, i int) []byte {
		return appendSpan(b, ivs[i].Lo, ivs[i].Hi)
	})
}

// encodeList writes n parts, comma-separated, as one JSON string.
func encodeList(n int, part func(b []byte, i int) []byte) ([]byte, error) {
	b := make([]byte, 0, 20*n)
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = part(b, i)
	}
	return json.Marshal(string(b))
}

func (ivs *Intervals) UnmarshalJSON(data []byte) error {
	var out Intervals
	err := decodeList(data, (*[]Interval)(&out), func(part string) error {
		lo, hi, err := parseSpan(part)
		out = append(out, Interval{Lo: lo, Hi: hi})
		return err
	})
	*ivs = out
	return err
}

// decodeList reads a compact list: a JSON string of comma-separated
// parts, each given to each; or, as written before, a JSON list of
// objects, decoded into legacy.
func decodeList(data []byte, legacy any, each func(part string) error) error {
	if len(data) > 0 && data[0] != '"' {
		return json.Unmarshal(data, legacy)
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	if s == "" {
		return nil
	}
	for _, part := range strings.Split(s, ",") {
		if err := each(part); err != nil {
			return err
		}
	}
	return nil
}

func (rs UIDRanges) MarshalJSON() ([]byte, error) {
	return encodeList(len(rs), func(b []byte, i int) []byte {
		b = append(appendSpan(b, rs[i].Lo, rs[i].Hi), ':')
		return strconv.AppendInt(b, int64(rs[i].Profile), 10)
	})
}

func (rs *UIDRanges) UnmarshalJSON(data []byte) error {
	var out UIDRanges
	err := decodeList(data, (*[]UIDRange)(&out), func(part string) error {
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
		return nil
	})
	*rs = out
	return err
}
