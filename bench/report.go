package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
)

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		var kb int
		if _, err := fmt.Fscanf(f, "MemTotal: %d kB", &kb); err == nil {
			m.MemMB = kb / 1024
		}
		f.Close()
	}
	out := func(args ...string) string {
		o, err := exec.Command(args[0], args[1:]...).Output()
		if err != nil {
			return "unknown"
		}
		return strings.TrimSpace(string(o))
	}
	m.Kernel = out("uname", "-r")
	m.Nft = out("nft", "--version")
	m.Iptables = out("iptables", "--version")
	if c := out("git", "rev-parse", "--short", "HEAD"); c != "unknown" {
		m.Ownerwall = c
		if out("git", "status", "--porcelain", "--untracked-files=no") != "" {
			m.Ownerwall += " (modified)"
		}
	}
	return m
}

// WriteTables prints the results as Markdown tables.
func WriteTables(w io.Writer, res *Results) {
	m := res.Machine
	o := res.Options
	fmt.Fprintf(w, "Machine: %d CPUs (%s), %d MB, kernel %s, %s, %s, %s\n", m.CPUs, m.CPUModel, m.MemMB, m.Kernel, m.Nft, m.Iptables, m.Go)
	how := fmt.Sprintf("one client switching between the configurations every %s", o.Slice)
	if o.Interleave == "process" {
		how = "one client process per sample, configurations in turn"
	}
	fmt.Fprintf(w, "Run: %d runs of %s per configuration (%s), %d connection(s) in flight, CPU placement %s, ownerwall %s, %s\n\n",
		o.Runs, o.Duration, how, o.Conc, o.Pin, m.Ownerwall, res.Started.Format("2006-01-02 15:04 UTC"))

	fmt.Fprintln(w, "Connection rate as a ratio to no firewall in the same run: median (min–max) of the runs")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| shape | N | no firewall, conn/s median (min–max) | empty nft chain | seed method | ownerwall nft | ownerwall iptables | other load (median, max) |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|")
	for _, c := range res.Cases {
		none := c.Rate[CfgNone]
		row := fmt.Sprintf("| %s | %d | %.0f (%.0f–%.0f) |", c.Shape, c.N, none.Median, none.Min, none.Max)
		for _, cfg := range []string{CfgHook, CfgSeed, CfgNft, CfgIptables} {
			row += " " + ratioCell(c, cfg) + " |"
		}
		row += fmt.Sprintf(" %.0f%%, %.0f%% |", 100*c.Background.Median, 100*c.Background.Max)
		fmt.Fprintln(w, row)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "† the configuration's own loader did not finish within the timeout; the same rules were loaded by hand (see the notes).")
	fmt.Fprintln(w)

	fmt.Fprintln(w, "Apply (wall clock, ms; first apply on an empty namespace), compile, kernel load, memory")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| shape | N | nft apply | nft apply CPU | nft re-apply | export nft (compile+render) | nft -f alone | nft -f, NSS blind | nft list | iptables apply | iptables apply CPU | iptables re-apply | iptables-restore of export, NSS blind | seed iptables-restore | compile peak RSS (export nft) | nft apply peak RSS | iptables apply peak RSS |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, c := range res.Cases {
		n, i, s := c.Apply[CfgNft], c.Apply[CfgIptables], c.Apply[CfgSeed]
		fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", c.Shape, c.N,
			applyMS(n, o),
			ms(n, func(a *ApplyInfo) float64 { return a.ApplyCPUMS }),
			ms(n, func(a *ApplyInfo) float64 { return a.ReapplyMS }),
			ms(n, func(a *ApplyInfo) float64 { return a.ExportMS }),
			ms(n, func(a *ApplyInfo) float64 { return a.KernelMS }),
			ms(n, func(a *ApplyInfo) float64 { return a.KernelBlindMS }),
			ms(n, func(a *ApplyInfo) float64 { return a.ListMS }),
			applyMS(i, o),
			ms(i, func(a *ApplyInfo) float64 { return a.ApplyCPUMS }),
			ms(i, func(a *ApplyInfo) float64 { return a.ReapplyMS }),
			ms(i, func(a *ApplyInfo) float64 { return a.KernelBlindMS }),
			seedMS(s, o),
			mb(n, func(a *ApplyInfo) int64 { return a.ExportRSSKB }),
			mb(n, func(a *ApplyInfo) int64 { return a.ApplyRSSKB }),
			mb(i, func(a *ApplyInfo) int64 { return a.ApplyRSSKB }))
	}
	fmt.Fprintln(w)

	fmt.Fprintln(w, "Adding one account to a group (one-line /etc/group change), shape B, ms: median (min–max).")
	fmt.Fprintln(w, "apply: the change, then `ownerwall apply` (wall time; CPU). watch: `ownerwall watch` running; from the end of the write to the account's first connection that gets through, as the account sees it.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| N | nft, apply | (CPU) | nft, watch | iptables, apply | (CPU) | iptables, watch |")
	fmt.Fprintln(w, "|---:|---:|---:|---:|---:|---:|---:|")
	for _, c := range res.Cases {
		if c.Shape != ShapeB {
			continue
		}
		row := fmt.Sprintf("| %d |", c.N)
		for _, cfg := range []string{CfgNft, CfgIptables} {
			if st, ok := c.AddToGroup[cfg]; ok {
				row += fmt.Sprintf(" %.1f (%.1f–%.1f) | %.1f |", st.Median, st.Min, st.Max, c.AddToGroupCPU[cfg].Median)
			} else {
				row += " — | — |"
			}
			if st, ok := c.AddToGroupWatch[cfg]; ok {
				row += fmt.Sprintf(" %.1f (%.1f–%.1f) |", st.Median, st.Min, st.Max)
			} else {
				row += " — |"
			}
		}
		fmt.Fprintln(w, row)
	}
	fmt.Fprintln(w)
	var bad []string
	for _, c := range res.Cases {
		for _, ch := range c.Checks {
			if !ch.OK {
				bad = append(bad, fmt.Sprintf("shape %s N=%d %s: %s: got %s", c.Shape, c.N, ch.Config, ch.What, ch.Got))
			}
		}
		if c.BusySamples > 0 {
			bad = append(bad, fmt.Sprintf("shape %s N=%d: %d samples kept although other processes used more than %.0f%% of the CPUs (after %d retries in all)", c.Shape, c.N, c.BusySamples, 100*res.Options.MaxBackground, c.Retried))
		}
		for cfg, a := range c.Apply {
			if a.Note != "" {
				bad = append(bad, fmt.Sprintf("shape %s N=%d %s: %s", c.Shape, c.N, cfg, a.Note))
			}
		}
		for cfg, e := range c.Errors {
			bad = append(bad, fmt.Sprintf("shape %s N=%d %s: %d failed connection cycles during samples", c.Shape, c.N, cfg, e))
		}
		for cfg, a := range c.Apply {
			if a.Error != "" {
				bad = append(bad, fmt.Sprintf("shape %s N=%d %s: apply failed: %s", c.Shape, c.N, cfg, a.Error))
			}
		}
	}
	if len(bad) == 0 {
		fmt.Fprintln(w, "Checks: all passed (the measured uid connects in every configuration; a uid outside the policy is refused; an account added to a group connects after the re-apply).")
	} else {
		fmt.Fprintln(w, "Notes and problems:")
		for _, b := range bad {
			fmt.Fprintln(w, "  - "+b)
		}
	}
}

func ratioCell(c *Case, cfg string) string {
	if a := c.Apply[cfg]; a != nil && a.Error != "" {
		return "apply failed"
	}
	st, ok := c.Ratio[cfg]
	if !ok {
		return "—"
	}
	mark := ""
	if a := c.Apply[cfg]; a != nil && a.TimedOut {
		mark = " †"
	}
	return fmt.Sprintf("%.3f (%.3f–%.3f)%s", st.Median, st.Min, st.Max, mark)
}

func ms(a *ApplyInfo, f func(*ApplyInfo) float64) string {
	if a == nil {
		return "—"
	}
	if a.Error != "" {
		return "failed"
	}
	v := f(a)
	if v == 0 {
		return "—"
	}
	return fmt.Sprintf("%.0f", v)
}

func applyMS(a *ApplyInfo, o *Options) string {
	if a != nil && a.TimedOut {
		return fmt.Sprintf("> %s (timed out)", o.Timeout)
	}
	return ms(a, func(a *ApplyInfo) float64 { return a.ApplyMS })
}

func seedMS(a *ApplyInfo, o *Options) string {
	if a != nil && a.TimedOut {
		return fmt.Sprintf("> %s (timed out)", o.SeedTimeout)
	}
	return ms(a, func(a *ApplyInfo) float64 { return a.ApplyMS })
}

func mb(a *ApplyInfo, f func(*ApplyInfo) int64) string {
	if a == nil || a.Error != "" || f(a) == 0 {
		return "—"
	}
	return fmt.Sprintf("%.0f MB", float64(f(a))/1024)
}
