package differential

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ownerwall/ownerwall/internal/lab"
)

// candidates are the policies one step smaller than p: a rule, service,
// principal, host, port or protocol removed, a service inlined, the
// outbound default, log and name back to their defaults. Coarse steps come
// first. Some candidates are invalid (a serve rule with no port left, a
// service still in use): the shrinker skips those that do not compile.
func candidates(p genPolicy) []genPolicy {
	var out []genPolicy
	add := func(f func(c *genPolicy) bool) {
		c := p.clone()
		if f(&c) {
			out = append(out, c)
		}
	}
	for i := range p.Rules {
		add(func(c *genPolicy) bool { c.Rules = append(c.Rules[:i], c.Rules[i+1:]...); return len(c.Rules) > 0 })
	}
	for i, s := range p.Services {
		add(func(c *genPolicy) bool { // inline the service where rules use it
			for j := range c.Rules {
				if c.Rules[j].Service == s.Name {
					c.Rules[j].Service, c.Rules[j].Dest = "", s.Dest.clone()
				}
			}
			c.Services = append(c.Services[:i], c.Services[i+1:]...)
			return true
		})
	}
	if p.Outbound != "" {
		add(func(c *genPolicy) bool { c.Outbound = ""; return true })
	}
	for i := range p.Rules {
		r := &p.Rules[i]
		rule := func(f func(r *genRule) bool) {
			add(func(c *genPolicy) bool { return f(&c.Rules[i]) })
		}
		if r.Who != nil {
			rule(func(r *genRule) bool { r.Who = nil; return true })
		}
		for j := range r.Who {
			if len(r.Who) > 1 {
				rule(func(r *genRule) bool { r.Who = append(r.Who[:j], r.Who[j+1:]...); return true })
			}
		}
		if r.Except != nil {
			rule(func(r *genRule) bool { r.Except = nil; return true })
		}
		for j := range r.Except {
			if len(r.Except) > 1 {
				rule(func(r *genRule) bool { r.Except = append(r.Except[:j], r.Except[j+1:]...); return true })
			}
		}
		if r.Service != "" {
			continue
		}
		if r.Dest.HostAny || r.Dest.Hosts != nil {
			rule(func(r *genRule) bool { r.Dest.HostAny, r.Dest.Hosts = false, nil; return true })
		}
		for j := range r.Dest.Hosts {
			if len(r.Dest.Hosts) > 1 {
				rule(func(r *genRule) bool { r.Dest.Hosts = append(r.Dest.Hosts[:j], r.Dest.Hosts[j+1:]...); return true })
			}
		}
		for _, proto := range []string{"tcp", "udp"} {
			get := func(r *genRule) **genPorts {
				if proto == "tcp" {
					return &r.Dest.TCP
				}
				return &r.Dest.UDP
			}
			ports := *get(r)
			if ports == nil {
				continue
			}
			rule(func(r *genRule) bool { *get(r) = nil; return true })
			for j := range ports.Items {
				if len(ports.Items) > 1 {
					rule(func(r *genRule) bool {
						pp := *get(r)
						pp.Items = append(pp.Items[:j], pp.Items[j+1:]...)
						return true
					})
				}
			}
		}
		if r.Log {
			rule(func(r *genRule) bool { r.Log = false; return true })
		}
		if r.Name != "" {
			rule(func(r *genRule) bool { r.Name = ""; return true })
		}
	}
	return out
}

// failure is what the shrinker keeps reproducing: an apply error, or an
// attempt whose observation differs from explain's prediction.
type failure struct {
	apply   bool
	attempt attempt
	class   string // the mismatch's class: a shrunk policy must keep it
}

// reproduction is one lab run of a candidate policy.
type reproduction struct {
	reproduces bool
	pred       prediction
	observed   string
	detail     string
	applyError string
}

// confirmTimeoutMS is the probe timeout when confirming and shrinking: long
// enough that a slow answer on a busy machine is not taken for a drop.
const confirmTimeoutMS = 1000

// reproduce runs p in a fresh lab and says whether the failure persists.
// A mismatch must show in each of two copies of the attempt.
func reproduce(ctx context.Context, bin string, b backend, p genPolicy, f failure) (reproduction, bool) {
	yaml := p.yaml()
	rs, err := compilePolicy("shrink.yaml", yaml)
	if err != nil {
		return reproduction{}, false // not a valid candidate
	}
	var attempts []lab.Attempt
	var r reproduction
	if !f.apply {
		attempts = []lab.Attempt{f.attempt.Lab, f.attempt.Lab}
	}
	rep, err := lab.Run(ctx, bin, scenario(b, "shrink.yaml", yaml, attempts, confirmTimeoutMS))
	if err != nil {
		return r, false
	}
	r.applyError = rep.ApplyError
	if f.apply {
		r.reproduces = rep.ApplyError != ""
		return r, true
	}
	if rep.ApplyError != "" || len(rep.Results) != 2 {
		return r, true
	}
	r.observed, r.detail = rep.Results[0].Observed, rep.Results[0].Detail
	var c0, c1 string
	r.pred, c0 = judge(rs, p, f.attempt, b.kind, rep.Results[0].Observed)
	_, c1 = judge(rs, p, f.attempt, b.kind, rep.Results[1].Observed)
	r.reproduces = c0 == f.class && c1 == f.class
	return r, true
}

// shrink removes parts of p one at a time, keeping each removal after which
// the failure still reproduces, until no single removal does (or the budget
// of lab runs is spent). Candidates are tried `parallel` at a time; the
// first in order that reproduces wins, so the result does not depend on
// timing.
func shrink(ctx context.Context, bin string, b backend, p genPolicy, f failure, parallel, budget int) (genPolicy, reproduction, int) {
	cur := p
	last, _ := reproduce(ctx, bin, b, p, f)
	runs := 1
	for last.reproduces && runs < budget {
		cands := candidates(cur)
		improved := false
		for start := 0; start < len(cands) && !improved && runs < budget; start += parallel {
			batch := cands[start:min(start+parallel, len(cands))]
			res := make([]reproduction, len(batch))
			ran := make([]bool, len(batch))
			var wg sync.WaitGroup
			for i, c := range batch {
				wg.Add(1)
				go func() {
					defer wg.Done()
					res[i], ran[i] = reproduce(ctx, bin, b, c, f)
				}()
			}
			wg.Wait()
			for i := range batch {
				if ran[i] {
					runs++
				}
			}
			for i := range batch {
				if ran[i] && res[i].reproduces {
					cur, last, improved = batch[i], res[i], true
					break
				}
			}
		}
		if !improved {
			break
		}
	}
	return cur, last, runs
}

func describeShrunk(b backend, p genPolicy, f failure, r reproduction, runs int, took time.Duration) string {
	s := fmt.Sprintf("smallest policy that still reproduces it on %s (%d lab runs, %s):\n%s", b.name, runs, took.Round(time.Second), indent(p.yaml()))
	if f.apply {
		return s + fmt.Sprintf("  apply error: %s\n", r.applyError)
	}
	ref, why := refPredict(p, f.attempt, b.kind)
	return s + fmt.Sprintf("  attempt: %s\n  %s\n  reference model (docs/policy.md): %s (%s)\n  kernel observed %s (%s)\n  class: %s\n", f.attempt, r.pred, ref, why, r.observed, r.detail, f.class)
}
