package cli

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ownerwall/ownerwall/internal/importer"
)

func (a *app) importCommand() *cobra.Command {
	var noListenCheck bool
	cmd := &cobra.Command{
		Use:   "import [FILE...]",
		Short: "Turn iptables-save/ip6tables-save owner rules into a policy, and name their mistakes",
		Long: "Reads iptables-save and ip6tables-save output (files, or standard input) and prints the\n" +
			"equivalent policy v1 on standard output; each mistake of the hand-written rules is a\n" +
			"warning on standard error, at its source line.",
		RunE: func(cmd *cobra.Command, args []string) error {
			var inputs []importer.Input
			if len(args) == 0 {
				args = []string{"-"}
			}
			for _, f := range args {
				var data []byte
				var err error
				if f == "-" {
					data, err = io.ReadAll(io.LimitReader(os.Stdin, 64<<20))
				} else {
					data, err = os.ReadFile(f)
				}
				if err != nil {
					return fmt.Errorf("import: %w", err)
				}
				inputs = append(inputs, importer.Input{Name: f, Data: data})
			}
			opt := importer.Options{File: "<stdin>"}
			if !noListenCheck {
				opt.Listening = listening()
			}
			res, err := importer.Import(inputs, opt)
			if err != nil {
				return err
			}
			for _, w := range res.Warnings {
				fmt.Fprintln(a.stderr, w.String())
			}
			_, err = fmt.Fprint(a.stdout, res.Policy)
			return err
		},
	}
	cmd.Flags().BoolVar(&noListenCheck, "no-listen-check", false, "do not warn about guarded ports that nothing on this host listens on")
	return cmd
}

// listening reads this host's sockets from /proc/net: a TCP port counts
// when something listens on it, a UDP port when something is bound to it.
func listening() func(proto string, port uint16) bool {
	ports := map[string]map[uint16]bool{"tcp": {}, "udp": {}}
	read := func(file, proto, state string) {
		f, err := os.Open(file)
		if err != nil {
			return
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 4 || (state != "" && fields[3] != state) {
				continue
			}
			_, hexPort, ok := strings.Cut(fields[1], ":")
			if !ok {
				continue
			}
			if p, err := strconv.ParseUint(hexPort, 16, 16); err == nil {
				ports[proto][uint16(p)] = true
			}
		}
	}
	read("/proc/net/tcp", "tcp", "0A")
	read("/proc/net/tcp6", "tcp", "0A")
	read("/proc/net/udp", "udp", "")
	read("/proc/net/udp6", "udp", "")
	return func(proto string, port uint16) bool { return ports[proto][port] }
}
