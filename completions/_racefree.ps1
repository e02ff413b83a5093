
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'racefree' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'racefree'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'racefree' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('makedirs', 'makedirs', [CompletionResultType]::ParameterValue, 'Create directories and their missing ancestors, safely under concurrency')
            [CompletionResult]::new('ident', 'ident', [CompletionResultType]::ParameterValue, 'RFC 1413 ident: look up a connection''s owner, serve identd, or query one')
            [CompletionResult]::new('stress', 'stress', [CompletionResultType]::ParameterValue, 'Run parallel racers against every command and verify every answer')
            [CompletionResult]::new('lock', 'lock', [CompletionResultType]::ParameterValue, 'Run a command while holding a file lock (flock(1) without its traps)')
            [CompletionResult]::new('counter', 'counter', [CompletionResultType]::ParameterValue, 'Add to a number stored in a file, atomically, and print the new value')
            [CompletionResult]::new('write', 'write', [CompletionResultType]::ParameterValue, 'Replace a file''s content with standard input, atomically and durably')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'racefree;makedirs' {
            [CompletionResult]::new('-m', '-m', [CompletionResultType]::ParameterName, 'Mode of each leaf this call creates, as GNU mkdir -m gives it: octal (755, 00755) or chmod(1)''s symbolic grammar (u=rwx,g=rx,o=, a+X, go-w, -w, =rx, +t); a clause without u/g/o/a is limited by the umask, and ''='' grants only what it names')
            [CompletionResult]::new('--mode', '--mode', [CompletionResultType]::ParameterName, 'Mode of each leaf this call creates, as GNU mkdir -m gives it: octal (755, 00755) or chmod(1)''s symbolic grammar (u=rwx,g=rx,o=, a+X, go-w, -w, =rx, +t); a clause without u/g/o/a is limited by the umask, and ''='' grants only what it names')
            [CompletionResult]::new('-Z', '-Z ', [CompletionResultType]::ParameterName, 'Refused: racefree sets no SELinux or SMACK security context (mkdir -Z, --context[=CTX])')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Refused: racefree sets no SELinux or SMACK security context (mkdir -Z, --context[=CTX])')
            [CompletionResult]::new('--beneath', '--beneath', [CompletionResultType]::ParameterName, 'Resolve each PATH relative to DIR and never leave DIR (openat2 RESOLVE_BENEATH): ''..'' and symlinks that would escape are errors. Each new directory is resolved again from DIR after mkdir; if a directory the walk held was moved out of DIR meanwhile, the one just made (outside) is removed again and the PATH fails: no directory this call made is left outside DIR, unless something was put into it in that instant (the error then says so)')
            [CompletionResult]::new('--from', '--from', [CompletionResultType]::ParameterName, 'Read paths from FILE (''-'' for standard input), one per line, after any PATH arguments. Read as a stream, 4096 paths at a time, so memory stays flat however long the list; an entry is at most 1 MiB. The first bad entry (empty, holding a NUL, too long) is a usage error naming its position: the paths before it are made and reported, none after it')
            [CompletionResult]::new('-j', '-j', [CompletionResultType]::ParameterName, 'How many paths to work on at once [default: the number of cores]. Never more threads than there are paths, nor than 4 per core (at least 64)')
            [CompletionResult]::new('--jobs', '--jobs', [CompletionResultType]::ParameterName, 'How many paths to work on at once [default: the number of cores]. Never more threads than there are paths, nor than 4 per core (at least 64)')
            [CompletionResult]::new('--attempts', '--attempts', [CompletionResultType]::ParameterName, 'How many times to start over when the tree changes under the walk')
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'Accepted for mkdir -p''s sake and changes nothing: missing parents are always made, and an existing directory is always fine')
            [CompletionResult]::new('--parents', '--parents', [CompletionResultType]::ParameterName, 'Accepted for mkdir -p''s sake and changes nothing: missing parents are always made, and an existing directory is always fine')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print "racefree: created directory ''P''" for each directory this process created. Names are quoted as GNU mkdir -v quotes them in the C locale: ''nl''$''\n''''x''')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print "racefree: created directory ''P''" for each directory this process created. Names are quoted as GNU mkdir -v quotes them in the C locale: ''nl''$''\n''''x''')
            [CompletionResult]::new('--no-symlinks', '--no-symlinks', [CompletionResultType]::ParameterName, 'Refuse every symlink in the path; walk one component at a time with openat(O_NOFOLLOW) and mkdirat from the first component. Safe in world-writable directories, where a component could be swapped for a symlink mid-walk')
            [CompletionResult]::new('--exclusive', '--exclusive', [CompletionResultType]::ParameterName, 'Ancestors may already exist, but the leaf must be created by this call (the mkdir-as-a-lock idiom); exit 3 if it already exists')
            [CompletionResult]::new('-0', '-0', [CompletionResultType]::ParameterName, 'With --from: paths are separated by NUL bytes, not newlines')
            [CompletionResult]::new('--null', '--null', [CompletionResultType]::ParameterName, 'With --from: paths are separated by NUL bytes, not newlines')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON object per path on stdout: path, directory, created, retries, error. Lossless: a path that is not UTF-8 is written as {"bytes_hex": "<its bytes in hex>"}')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'racefree;ident' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('lookup', 'lookup', [CompletionResultType]::ParameterValue, 'Print the user that owns a TCP connection, matched on its 4-tuple only')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Serve RFC 1413 ident under inetd, systemd socket activation, or standalone')
            [CompletionResult]::new('query', 'query', [CompletionResultType]::ParameterValue, 'Ask a host''s identd who owns a connection')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'racefree;ident;lookup' {
            [CompletionResult]::new('--source', '--source', [CompletionResultType]::ParameterName, 'Where to read the kernel''s socket table')
            [CompletionResult]::new('--forward', '--forward', [CompletionResultType]::ParameterName, 'With --nat: ask the identd of a host behind this one (not a container here) on PORT, and relay its answer (ident serve --user makes that query as the user; only reading conntrack, to know whom to ask, stays privileged)')
            [CompletionResult]::new('--numeric', '--numeric', [CompletionResultType]::ParameterName, 'Print the uid instead of the user name')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print uid, user, state, inode and source as one JSON object')
            [CompletionResult]::new('--nat', '--nat', [CompletionResultType]::ParameterName, 'Answer for connections this host translated (masquerade, SNAT): look the conntrack entry up, then the container holding the original connection (needs root)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'racefree;ident;serve' {
            [CompletionResult]::new('--listen', '--listen', [CompletionResultType]::ParameterName, 'Standalone: listen on ADDR:PORT ([V6ADDR]:PORT, or [V6ADDR%SCOPE]:PORT for a link-local one), or on every address, IPv4 and IPv6, with PORT or :PORT (port 0 picks one); repeatable')
            [CompletionResult]::new('--mode', '--mode', [CompletionResultType]::ParameterName, 'How the server was started')
            [CompletionResult]::new('--max-conns', '--max-conns', [CompletionResultType]::ParameterName, 'Standalone and inetd wait: connections served at once; when all are taken, a new one replaces the oldest idle one (no complete request yet) of the address holding the most, or is closed if none is idle. At most what RLIMIT_NOFILE allows (the soft limit is raised as needed; the log says when the hard limit bounds it)')
            [CompletionResult]::new('--max-conns-per-addr', '--max-conns-per-addr', [CompletionResultType]::ParameterName, 'Connections one address may hold (IPv6: one /64, what a host is given); a new one past it takes the place of that address''s oldest idle one, or is closed if none is idle [default: half of --max-conns]')
            [CompletionResult]::new('--first-line-timeout', '--first-line-timeout', [CompletionResultType]::ParameterName, 'Seconds a new connection may take to send its first request line in full (at most --timeout)')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Seconds a request line may take to arrive in full, counted from the previous one (RFC 1413 suggests 60 to 180)')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'After binding, run everything that reads the network as this user (its uid and gid, no other group, no capability; verified). A forked helper alone stays root, for one question: who owns a connection and may they be named, since ~/.noident sits in homes often closed (0700) to anyone but their owner and root. The helper takes only the two ports and the ident connection itself, and answers only about that connection''s own addresses. With --nat and --proxy the helper also resolves what this host''s own table lacks (conntrack, containers'' tables and their /etc/passwd: root''s to read). With --forward the helper only says which host and ports to ask, since only conntrack, read as root, knows; the query to that host and its reply (network input) are made and parsed as this user, and a host that never answers holds no helper worker')
            [CompletionResult]::new('--hide', '--hide', [CompletionResultType]::ParameterName, 'Answer HIDDEN-USER for this user (name or uid); repeatable')
            [CompletionResult]::new('-r', '-r', [CompletionResultType]::ParameterName, 'When no owner is found or the lookup fails, answer USERID with this user id instead of NO-USER or UNKNOWN-ERROR; a hidden user stays HIDDEN-USER (oidentd -r)')
            [CompletionResult]::new('--reply', '--reply', [CompletionResultType]::ParameterName, 'When no owner is found or the lookup fails, answer USERID with this user id instead of NO-USER or UNKNOWN-ERROR; a hidden user stays HIDDEN-USER (oidentd -r)')
            [CompletionResult]::new('-R', '-R ', [CompletionResultType]::ParameterName, 'Answer every well-formed request USERID with this user id, looking nothing up (oidentd -R)')
            [CompletionResult]::new('--reply-all', '--reply-all', [CompletionResultType]::ParameterName, 'Answer every well-formed request USERID with this user id, looking nothing up (oidentd -R)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'The operating system field of every USERID reply; OTHER when given without a value [default: UNIX for a name, OTHER for a uid] (oidentd -o)')
            [CompletionResult]::new('--other', '--other', [CompletionResultType]::ParameterName, 'The operating system field of every USERID reply; OTHER when given without a value [default: UNIX for a name, OTHER for a uid] (oidentd -o)')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Name this character set in USERID replies, after the OS: `UNIX,UTF-8` (oidentd -c)')
            [CompletionResult]::new('--charset', '--charset', [CompletionResultType]::ParameterName, 'Name this character set in USERID replies, after the OS: `UNIX,UTF-8` (oidentd -c)')
            [CompletionResult]::new('--source', '--source', [CompletionResultType]::ParameterName, 'Where to read the kernel''s socket table (what each costs: bench/RESULTS-identd.md)')
            [CompletionResult]::new('--forward', '--forward', [CompletionResultType]::ParameterName, 'With --nat: ask the identd of a host behind this one (not a container here) on PORT, and relay its answer (ident serve --user makes that query as the user; only reading conntrack, to know whom to ask, stays privileged)')
            [CompletionResult]::new('--proxy', '--proxy', [CompletionResultType]::ParameterName, 'Answer queries forwarded by this NAT host (`racefree ident serve --nat --forward` or oidentd -f) about this host''s connections by ports alone; repeatable')
            [CompletionResult]::new('--log', '--log', [CompletionResultType]::ParameterName, 'Where to log queries and errors [default: syslog under inetd and systemd, stderr standalone]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Apply oidentd.conf(5): the system FILE (without one, /etc/oidentd.conf, where no such file means oidentd''s defaults) and users'' ~/.config/oidentd.conf or ~/.oidentd.conf where it lets them matter. SIGHUP reads FILE again')
            [CompletionResult]::new('-C', '-C ', [CompletionResultType]::ParameterName, 'oidentd''s spelling of --config=FILE')
            [CompletionResult]::new('--hide-all', '--hide-all', [CompletionResultType]::ParameterName, 'Answer HIDDEN-USER for everyone')
            [CompletionResult]::new('--numeric', '--numeric', [CompletionResultType]::ParameterName, 'Answer `USERID : OTHER : <uid>` instead of the user name')
            [CompletionResult]::new('-e', '-e', [CompletionResultType]::ParameterName, 'Answer UNKNOWN-ERROR for every error, NO-USER, HIDDEN-USER and INVALID-PORT included, so a querier cannot tell a hidden user from an absent one (oidentd -e)')
            [CompletionResult]::new('--error', '--error', [CompletionResultType]::ParameterName, 'Answer UNKNOWN-ERROR for every error, NO-USER, HIDDEN-USER and INVALID-PORT included, so a querier cannot tell a hidden user from an absent one (oidentd -e)')
            [CompletionResult]::new('--nat', '--nat', [CompletionResultType]::ParameterName, 'Answer for connections this host translated (masquerade, SNAT): look the conntrack entry up, then the container holding the original connection (needs root)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'racefree;ident;query' {
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'identd''s port on HOST')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Give up after this many seconds (connect, send and reply together)')
            [CompletionResult]::new('--bind', '--bind', [CompletionResultType]::ParameterName, 'Connect from this local address (identd answers only about connections of the address it is asked from); a link-local one names its interface, fe80::2%eth0')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the reply as one JSON object, whatever its verdict (USERID, ERROR, invalid)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'racefree;ident;help' {
            [CompletionResult]::new('lookup', 'lookup', [CompletionResultType]::ParameterValue, 'Print the user that owns a TCP connection, matched on its 4-tuple only')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Serve RFC 1413 ident under inetd, systemd socket activation, or standalone')
            [CompletionResult]::new('query', 'query', [CompletionResultType]::ParameterValue, 'Ask a host''s identd who owns a connection')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'racefree;ident;help;lookup' {
            break
        }
        'racefree;ident;help;serve' {
            break
        }
        'racefree;ident;help;query' {
            break
        }
        'racefree;ident;help;help' {
            break
        }
        'racefree;stress' {
            [CompletionResult]::new('--duration', '--duration', [CompletionResultType]::ParameterName, 'Seconds for each arm, and on while its control has not failed: up to 4 x S')
            [CompletionResult]::new('--racers', '--racers', [CompletionResultType]::ParameterName, 'Racers per arm [default: 4 x cores]')
            [CompletionResult]::new('--processes', '--processes', [CompletionResultType]::ParameterName, 'Racers are separate processes of this binary instead of threads')
            [CompletionResult]::new('--no-control', '--no-control', [CompletionResultType]::ParameterName, 'Race no control arm beside each arm: the verdict is then at best "PASS, no control ran"')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the report as JSON on stdout')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('makedirs', 'makedirs', [CompletionResultType]::ParameterValue, 'Racers build the same deep trees at once; every round verified exactly')
            [CompletionResult]::new('ident', 'ident', [CompletionResultType]::ParameterValue, 'Racers look up loopback connections held in every TCP state')
            [CompletionResult]::new('counter', 'counter', [CompletionResultType]::ParameterValue, 'Racers take numbers from one counter file; all distinct, exactly 1..total')
            [CompletionResult]::new('write', 'write', [CompletionResultType]::ParameterValue, 'Writers replace one file while readers check every read is one whole version')
            [CompletionResult]::new('crash', 'crash', [CompletionResultType]::ParameterValue, 'Racers'' counter, write and lock calls are SIGKILLed mid-operation; nothing committed is lost, nothing is left')
            [CompletionResult]::new('lock', 'lock', [CompletionResultType]::ParameterValue, 'Racers increment one counter, each read-modify-write under racefree lock')
            [CompletionResult]::new('exec', 'exec', [CompletionResultType]::ParameterValue, 'Race your own command: many copies at once, judged against a sequential run')
            [CompletionResult]::new('report', 'report', [CompletionResultType]::ParameterValue, 'Merge the reports instances wrote to a shared tree into one verdict')
            [CompletionResult]::new('worker', 'worker', [CompletionResultType]::ParameterValue, 'One racer process (started by --processes; not for direct use)')
            [CompletionResult]::new('crash-call', 'crash-call', [CompletionResultType]::ParameterValue, 'One call the crash arm kills: a lock holder, or the control''s counter or writer (not for direct use)')
            [CompletionResult]::new('rmw', 'rmw', [CompletionResultType]::ParameterValue, 'One locked read-modify-write (the COMMAND of stress lock; not for direct use)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'racefree;stress;makedirs' {
            [CompletionResult]::new('--depth', '--depth', [CompletionResultType]::ParameterName, 'Levels below each round''s directory')
            [CompletionResult]::new('--fanout', '--fanout', [CompletionResultType]::ParameterName, 'Subdirectories per level (fanout^depth leaf paths per round, at most 100000)')
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'The tree under test (any mount, network filesystems included); it must exist. The run works in a new subdirectory it creates there [default: $TMPDIR]')
            [CompletionResult]::new('--racers', '--racers', [CompletionResultType]::ParameterName, 'How many racers [default: 4 x cores]')
            [CompletionResult]::new('--rounds', '--rounds', [CompletionResultType]::ParameterName, 'Run R rounds, and more while the control has not failed: up to 4 x R')
            [CompletionResult]::new('--duration', '--duration', [CompletionResultType]::ParameterName, 'Run rounds until S seconds have passed (at least one round), and on while the control has not failed: up to 4 x S')
            [CompletionResult]::new('--barrier-file', '--barrier-file', [CompletionResultType]::ParameterName, 'Across hosts: wait at this file on the shared tree until --expect instances have arrived (PATH.arrived.ID), then start together at the instant the first to see them all publishes in PATH.start. Needs --dir; every instance races in DIR/racefree-stress-NAME, which is kept, with each instance''s report-ID.json, for `racefree stress report`, which removes each round''s tree once it has verified it. Each instance races its control on its own, in DIR/racefree-stress-NAME/controls-ID, removed as it goes. Use a fresh PATH per run')
            [CompletionResult]::new('--expect', '--expect', [CompletionResultType]::ParameterName, 'With --barrier-file: how many instances to wait for')
            [CompletionResult]::new('--id', '--id', [CompletionResultType]::ParameterName, 'This instance''s id [default: OMPI_COMM_WORLD_RANK, SLURM_PROCID, JOB_COMPLETION_INDEX, or 0]')
            [CompletionResult]::new('--barrier-timeout', '--barrier-timeout', [CompletionResultType]::ParameterName, 'With --barrier-file: seconds to wait for the others before giving up')
            [CompletionResult]::new('--max-entries', '--max-entries', [CompletionResultType]::ParameterName, 'With --barrier-file: the directory entries this instance''s rounds may leave for `stress report`, in total: it races no round that would pass them, and refuses a round larger than them')
            [CompletionResult]::new('--churn', '--churn', [CompletionResultType]::ParameterName, 'Also run removers that rmdir directories while the racers create them (as many removals a round as the tree has directories); makedirs'' retries must hold, and the report counts them')
            [CompletionResult]::new('--keep', '--keep', [CompletionResultType]::ParameterName, 'Keep the work directory instead of removing it at the end')
            [CompletionResult]::new('--processes', '--processes', [CompletionResultType]::ParameterName, 'Racers are separate processes of this binary, released together by closing the pipes they block on')
            [CompletionResult]::new('--no-control', '--no-control', [CompletionResultType]::ParameterName, 'Run no control arm. By default every run races the known-bad control beside racefree''s arm, under the same load, and keeps racing past --duration (up to 4 x --duration, or 4 x --rounds) while the control has not failed: a run whose control never failed is INCONCLUSIVE (exit 4). Without a control the verdict is at best "PASS, no control ran"')
            [CompletionResult]::new('--control', '--control', [CompletionResultType]::ParameterName, 'Run the control arm: the default, accepted for old scripts')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the report as JSON on stdout')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'racefree;stress;ident' {
            [CompletionResult]::new('--connections', '--connections', [CompletionResultType]::ParameterName, 'Connection pairs held in each TCP state')
            [CompletionResult]::new('--source', '--source', [CompletionResultType]::ParameterName, 'Which lookup the racers use')
            [CompletionResult]::new('--racers', '--racers', [CompletionResultType]::ParameterName, 'How many racers [default: 4 x cores]')
            [CompletionResult]::new('--rounds', '--rounds', [CompletionResultType]::ParameterName, 'Run R rounds, and more while the control has not failed: up to 4 x R')
            [CompletionResult]::new('--duration', '--duration', [CompletionResultType]::ParameterName, 'Run rounds until S seconds have passed (at least one round), and on while the control has not failed: up to 4 x S')
            [CompletionResult]::new('--barrier-file', '--barrier-file', [CompletionResultType]::ParameterName, 'Across hosts: wait at this file on the shared tree until --expect instances have arrived (PATH.arrived.ID), then start together at the instant the first to see them all publishes in PATH.start. Needs --dir; every instance races in DIR/racefree-stress-NAME, which is kept, with each instance''s report-ID.json, for `racefree stress report`, which removes each round''s tree once it has verified it. Each instance races its control on its own, in DIR/racefree-stress-NAME/controls-ID, removed as it goes. Use a fresh PATH per run')
            [CompletionResult]::new('--expect', '--expect', [CompletionResultType]::ParameterName, 'With --barrier-file: how many instances to wait for')
            [CompletionResult]::new('--id', '--id', [CompletionResultType]::ParameterName, 'This instance''s id [default: OMPI_COMM_WORLD_RANK, SLURM_PROCID, JOB_COMPLETION_INDEX, or 0]')
            [CompletionResult]::new('--barrier-timeout', '--barrier-timeout', [CompletionResultType]::ParameterName, 'With --barrier-file: seconds to wait for the others before giving up')
            [CompletionResult]::new('--max-entries', '--max-entries', [CompletionResultType]::ParameterName, 'With --barrier-file: the directory entries this instance''s rounds may leave for `stress report`, in total: it races no round that would pass them, and refuses a round larger than them')
            [CompletionResult]::new('--via-server', '--via-server', [CompletionResultType]::ParameterName, 'Also send every lookup over RFC 1413 to a `racefree ident serve --listen` this run starts on loopback, end to end')
            [CompletionResult]::new('--processes', '--processes', [CompletionResultType]::ParameterName, 'Racers are separate processes of this binary, released together by closing the pipes they block on')
            [CompletionResult]::new('--no-control', '--no-control', [CompletionResultType]::ParameterName, 'Run no control arm. By default every run races the known-bad control beside racefree''s arm, under the same load, and keeps racing past --duration (up to 4 x --duration, or 4 x --rounds) while the control has not failed: a run whose control never failed is INCONCLUSIVE (exit 4). Without a control the verdict is at best "PASS, no control ran"')
            [CompletionResult]::new('--control', '--control', [CompletionResultType]::ParameterName, 'Run the control arm: the default, accepted for old scripts')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the report as JSON on stdout')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'racefree;stress;counter' {
            [CompletionResult]::new('--takes', '--takes', [CompletionResultType]::ParameterName, 'Numbers each racer takes per round')
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'The tree under test (any mount, network filesystems included); it must exist. The run works in a new subdirectory it creates there [default: $TMPDIR]')
            [CompletionResult]::new('--racers', '--racers', [CompletionResultType]::ParameterName, 'How many racers [default: 4 x cores]')
            [CompletionResult]::new('--rounds', '--rounds', [CompletionResultType]::ParameterName, 'Run R rounds, and more while the control has not failed: up to 4 x R')
            [CompletionResult]::new('--duration', '--duration', [CompletionResultType]::ParameterName, 'Run rounds until S seconds have passed (at least one round), and on while the control has not failed: up to 4 x S')
            [CompletionResult]::new('--barrier-file', '--barrier-file', [CompletionResultType]::ParameterName, 'Across hosts: wait at this file on the shared tree until --expect instances have arrived (PATH.arrived.ID), then start together at the instant the first to see them all publishes in PATH.start. Needs --dir; every instance races in DIR/racefree-stress-NAME, which is kept, with each instance''s report-ID.json, for `racefree stress report`, which removes each round''s tree once it has verified it. Each instance races its control on its own, in DIR/racefree-stress-NAME/controls-ID, removed as it goes. Use a fresh PATH per run')
            [CompletionResult]::new('--expect', '--expect', [CompletionResultType]::ParameterName, 'With --barrier-file: how many instances to wait for')
            [CompletionResult]::new('--id', '--id', [CompletionResultType]::ParameterName, 'This instance''s id [default: OMPI_COMM_WORLD_RANK, SLURM_PROCID, JOB_COMPLETION_INDEX, or 0]')
            [CompletionResult]::new('--barrier-timeout', '--barrier-timeout', [CompletionResultType]::ParameterName, 'With --barrier-file: seconds to wait for the others before giving up')
            [CompletionResult]::new('--max-entries', '--max-entries', [CompletionResultType]::ParameterName, 'With --barrier-file: the directory entries this instance''s rounds may leave for `stress report`, in total: it races no round that would pass them, and refuses a round larger than them')
            [CompletionResult]::new('--keep', '--keep', [CompletionResultType]::ParameterName, 'Keep the work directory instead of removing it at the end')
            [CompletionResult]::new('--processes', '--processes', [CompletionResultType]::ParameterName, 'Racers are separate processes of this binary, released together by closing the pipes they block on')
            [CompletionResult]::new('--no-control', '--no-control', [CompletionResultType]::ParameterName, 'Run no control arm. By default every run races the known-bad control beside racefree''s arm, under the same load, and keeps racing past --duration (up to 4 x --duration, or 4 x --rounds) while the control has not failed: a run whose control never failed is INCONCLUSIVE (exit 4). Without a control the verdict is at best "PASS, no control ran"')
            [CompletionResult]::new('--control', '--control', [CompletionResultType]::ParameterName, 'Run the control arm: the default, accepted for old scripts')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the report as JSON on stdout')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'racefree;stress;write' {
            [CompletionResult]::new('--versions', '--versions', [CompletionResultType]::ParameterName, 'Versions each writer writes per round')
            [CompletionResult]::new('--reads', '--reads', [CompletionResultType]::ParameterName, 'Reads each reader makes per round at least (and more, until the writers are done)')
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'The tree under test (any mount, network filesystems included); it must exist. The run works in a new subdirectory it creates there [default: $TMPDIR]')
            [CompletionResult]::new('--racers', '--racers', [CompletionResultType]::ParameterName, 'How many racers [default: 4 x cores]')
            [CompletionResult]::new('--rounds', '--rounds', [CompletionResultType]::ParameterName, 'Run R rounds, and more while the control has not failed: up to 4 x R')
            [CompletionResult]::new('--duration', '--duration', [CompletionResultType]::ParameterName, 'Run rounds until S seconds have passed (at least one round), and on while the control has not failed: up to 4 x S')
            [CompletionResult]::new('--barrier-file', '--barrier-file', [CompletionResultType]::ParameterName, 'Across hosts: wait at this file on the shared tree until --expect instances have arrived (PATH.arrived.ID), then start together at the instant the first to see them all publishes in PATH.start. Needs --dir; every instance races in DIR/racefree-stress-NAME, which is kept, with each instance''s report-ID.json, for `racefree stress report`, which removes each round''s tree once it has verified it. Each instance races its control on its own, in DIR/racefree-stress-NAME/controls-ID, removed as it goes. Use a fresh PATH per run')
            [CompletionResult]::new('--expect', '--expect', [CompletionResultType]::ParameterName, 'With --barrier-file: how many instances to wait for')
            [CompletionResult]::new('--id', '--id', [CompletionResultType]::ParameterName, 'This instance''s id [default: OMPI_COMM_WORLD_RANK, SLURM_PROCID, JOB_COMPLETION_INDEX, or 0]')
            [CompletionResult]::new('--barrier-timeout', '--barrier-timeout', [CompletionResultType]::ParameterName, 'With --barrier-file: seconds to wait for the others before giving up')
            [CompletionResult]::new('--max-entries', '--max-entries', [CompletionResultType]::ParameterName, 'With --barrier-file: the directory entries this instance''s rounds may leave for `stress report`, in total: it races no round that would pass them, and refuses a round larger than them')
            [CompletionResult]::new('--keep', '--keep', [CompletionResultType]::ParameterName, 'Keep the work directory instead of removing it at the end')
            [CompletionResult]::new('--processes', '--processes', [CompletionResultType]::ParameterName, 'Racers are separate processes of this binary, released together by closing the pipes they block on')
            [CompletionResult]::new('--no-control', '--no-control', [CompletionResultType]::ParameterName, 'Run no control arm. By default every run races the known-bad control beside racefree''s arm, under the same load, and keeps racing past --duration (up to 4 x --duration, or 4 x --rounds) while the control has not failed: a run whose control never failed is INCONCLUSIVE (exit 4). Without a control the verdict is at best "PASS, no control ran"')
            [CompletionResult]::new('--control', '--control', [CompletionResultType]::ParameterName, 'Run the control arm: the default, accepted for old scripts')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the report as JSON on stdout')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'racefree;stress;crash' {
            [CompletionResult]::new('--calls', '--calls', [CompletionResultType]::ParameterName, 'Calls each racer makes per round (fewer once --duration is over)')
            [CompletionResult]::new('--sabotage', '--sabotage', [CompletionResultType]::ParameterName, 'Break racefree''s arm on purpose (for the tests)')
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'The tree under test (any mount, network filesystems included); it must exist. The run works in a new subdirectory it creates there [default: $TMPDIR]')
            [CompletionResult]::new('--racers', '--racers', [CompletionResultType]::ParameterName, 'How many racers [default: 4 x cores]')
            [CompletionResult]::new('--rounds', '--rounds', [CompletionResultType]::ParameterName, 'Run R rounds, and more while the control has not failed: up to 4 x R')
            [CompletionResult]::new('--duration', '--duration', [CompletionResultType]::ParameterName, 'Run rounds until S seconds have passed (at least one round), and on while the control has not failed: up to 4 x S')
            [CompletionResult]::new('--barrier-file', '--barrier-file', [CompletionResultType]::ParameterName, 'Across hosts: wait at this file on the shared tree until --expect instances have arrived (PATH.arrived.ID), then start together at the instant the first to see them all publishes in PATH.start. Needs --dir; every instance races in DIR/racefree-stress-NAME, which is kept, with each instance''s report-ID.json, for `racefree stress report`, which removes each round''s tree once it has verified it. Each instance races its control on its own, in DIR/racefree-stress-NAME/controls-ID, removed as it goes. Use a fresh PATH per run')
            [CompletionResult]::new('--expect', '--expect', [CompletionResultType]::ParameterName, 'With --barrier-file: how many instances to wait for')
            [CompletionResult]::new('--id', '--id', [CompletionResultType]::ParameterName, 'This instance''s id [default: OMPI_COMM_WORLD_RANK, SLURM_PROCID, JOB_COMPLETION_INDEX, or 0]')
            [CompletionResult]::new('--barrier-timeout', '--barrier-timeout', [CompletionResultType]::ParameterName, 'With --barrier-file: seconds to wait for the others before giving up')
            [CompletionResult]::new('--max-entries', '--max-entries', [CompletionResultType]::ParameterName, 'With --barrier-file: the directory entries this instance''s rounds may leave for `stress report`, in total: it races no round that would pass them, and refuses a round larger than them')
            [CompletionResult]::new('--keep', '--keep', [CompletionResultType]::ParameterName, 'Keep the work directory instead of removing it at the end')
            [CompletionResult]::new('--processes', '--processes', [CompletionResultType]::ParameterName, 'Racers are separate processes of this binary, released together by closing the pipes they block on')
            [CompletionResult]::new('--no-control', '--no-control', [CompletionResultType]::ParameterName, 'Run no control arm. By default every run races the known-bad control beside racefree''s arm, under the same load, and keeps racing past --duration (up to 4 x --duration, or 4 x --rounds) while the control has not failed: a run whose control never failed is INCONCLUSIVE (exit 4). Without a control the verdict is at best "PASS, no control ran"')
            [CompletionResult]::new('--control', '--control', [CompletionResultType]::ParameterName, 'Run the control arm: the default, accepted for old scripts')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the report as JSON on stdout')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'racefree;stress;lock' {
            [CompletionResult]::new('--increments', '--increments', [CompletionResultType]::ParameterName, 'Increments each racer makes per round')
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'The tree under test (any mount, network filesystems included); it must exist. The run works in a new subdirectory it creates there [default: $TMPDIR]')
            [CompletionResult]::new('--racers', '--racers', [CompletionResultType]::ParameterName, 'How many racers [default: 4 x cores]')
            [CompletionResult]::new('--rounds', '--rounds', [CompletionResultType]::ParameterName, 'Run R rounds, and more while the control has not failed: up to 4 x R')
            [CompletionResult]::new('--duration', '--duration', [CompletionResultType]::ParameterName, 'Run rounds until S seconds have passed (at least one round), and on while the control has not failed: up to 4 x S')
            [CompletionResult]::new('--barrier-file', '--barrier-file', [CompletionResultType]::ParameterName, 'Across hosts: wait at this file on the shared tree until --expect instances have arrived (PATH.arrived.ID), then start together at the instant the first to see them all publishes in PATH.start. Needs --dir; every instance races in DIR/racefree-stress-NAME, which is kept, with each instance''s report-ID.json, for `racefree stress report`, which removes each round''s tree once it has verified it. Each instance races its control on its own, in DIR/racefree-stress-NAME/controls-ID, removed as it goes. Use a fresh PATH per run')
            [CompletionResult]::new('--expect', '--expect', [CompletionResultType]::ParameterName, 'With --barrier-file: how many instances to wait for')
            [CompletionResult]::new('--id', '--id', [CompletionResultType]::ParameterName, 'This instance''s id [default: OMPI_COMM_WORLD_RANK, SLURM_PROCID, JOB_COMPLETION_INDEX, or 0]')
            [CompletionResult]::new('--barrier-timeout', '--barrier-timeout', [CompletionResultType]::ParameterName, 'With --barrier-file: seconds to wait for the others before giving up')
            [CompletionResult]::new('--max-entries', '--max-entries', [CompletionResultType]::ParameterName, 'With --barrier-file: the directory entries this instance''s rounds may leave for `stress report`, in total: it races no round that would pass them, and refuses a round larger than them')
            [CompletionResult]::new('--keep', '--keep', [CompletionResultType]::ParameterName, 'Keep the work directory instead of removing it at the end')
            [CompletionResult]::new('--processes', '--processes', [CompletionResultType]::ParameterName, 'Racers are separate processes of this binary, released together by closing the pipes they block on')
            [CompletionResult]::new('--no-control', '--no-control', [CompletionResultType]::ParameterName, 'Run no control arm. By default every run races the known-bad control beside racefree''s arm, under the same load, and keeps racing past --duration (up to 4 x --duration, or 4 x --rounds) while the control has not failed: a run whose control never failed is INCONCLUSIVE (exit 4). Without a control the verdict is at best "PASS, no control ran"')
            [CompletionResult]::new('--control', '--control', [CompletionResultType]::ParameterName, 'Run the control arm: the default, accepted for old scripts')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the report as JSON on stdout')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'racefree;stress;exec' {
            [CompletionResult]::new('--template', '--template', [CompletionResultType]::ParameterName, 'Copy this directory into each round''s directory first')
            [CompletionResult]::new('--setup', '--setup', [CompletionResultType]::ParameterName, 'Before the racers, run CMD with ''sh -c'' in the round''s directory (and in the sequential run''s)')
            [CompletionResult]::new('--check', '--check', [CompletionResultType]::ParameterName, 'After the racers, run CMD with ''sh -c'' in the round''s directory: exit 0 means the state is right. RACEFREE_RACERS and RACEFREE_ROUND are set')
            [CompletionResult]::new('--ignore', '--ignore', [CompletionResultType]::ParameterName, 'With --compare-sequential: names that may differ; without a ''/'' a name at any depth, with one a path from the round''s directory (repeatable)')
            [CompletionResult]::new('--expect-exit', '--expect-exit', [CompletionResultType]::ParameterName, 'The exit status every racer must end with')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Seconds a round''s racers may run before they count as hung (their process groups are killed, and the round fails)')
            [CompletionResult]::new('--widen', '--widen', [CompletionResultType]::ParameterName, 'Widen race windows by holding back each racer''s calls that change the filesystem (mkdir, an open for writing, rename, link, unlink). Rounds take turns: every racer''s first such call held until all racers have reached theirs, then let go together; every such call delayed MS; none held. 0 turns it off. A hold only picks a schedule the kernel could pick itself, so what fails under it is a real race. Racers of a user other than root then run with no_new_privs (setuid programs get no privileges)')
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'The tree under test (any mount, network filesystems included); it must exist. The run works in a new subdirectory it creates there [default: $TMPDIR]')
            [CompletionResult]::new('--racers', '--racers', [CompletionResultType]::ParameterName, 'How many racers [default: 4 x cores]')
            [CompletionResult]::new('--rounds', '--rounds', [CompletionResultType]::ParameterName, 'Run R rounds, and more while the control has not failed: up to 4 x R')
            [CompletionResult]::new('--duration', '--duration', [CompletionResultType]::ParameterName, 'Run rounds until S seconds have passed (at least one round), and on while the control has not failed: up to 4 x S')
            [CompletionResult]::new('--barrier-file', '--barrier-file', [CompletionResultType]::ParameterName, 'Across hosts: wait at this file on the shared tree until --expect instances have arrived (PATH.arrived.ID), then start together at the instant the first to see them all publishes in PATH.start. Needs --dir; every instance races in DIR/racefree-stress-NAME, which is kept, with each instance''s report-ID.json, for `racefree stress report`, which removes each round''s tree once it has verified it. Each instance races its control on its own, in DIR/racefree-stress-NAME/controls-ID, removed as it goes. Use a fresh PATH per run')
            [CompletionResult]::new('--expect', '--expect', [CompletionResultType]::ParameterName, 'With --barrier-file: how many instances to wait for')
            [CompletionResult]::new('--id', '--id', [CompletionResultType]::ParameterName, 'This instance''s id [default: OMPI_COMM_WORLD_RANK, SLURM_PROCID, JOB_COMPLETION_INDEX, or 0]')
            [CompletionResult]::new('--barrier-timeout', '--barrier-timeout', [CompletionResultType]::ParameterName, 'With --barrier-file: seconds to wait for the others before giving up')
            [CompletionResult]::new('--max-entries', '--max-entries', [CompletionResultType]::ParameterName, 'With --barrier-file: the directory entries this instance''s rounds may leave for `stress report`, in total: it races no round that would pass them, and refuses a round larger than them')
            [CompletionResult]::new('--compare-sequential', '--compare-sequential', [CompletionResultType]::ParameterName, 'The tree the racers leave must equal the one the same commands leave run one after another in a twin directory (names, types, modes, sizes, contents)')
            [CompletionResult]::new('--stop-on-first', '--stop-on-first', [CompletionResultType]::ParameterName, 'End the run at the first failing round')
            [CompletionResult]::new('--keep', '--keep', [CompletionResultType]::ParameterName, 'Keep the work directory instead of removing it at the end')
            [CompletionResult]::new('--no-control', '--no-control', [CompletionResultType]::ParameterName, 'Run no control arm. By default every run races the known-bad control beside racefree''s arm, under the same load, and keeps racing past --duration (up to 4 x --duration, or 4 x --rounds) while the control has not failed: a run whose control never failed is INCONCLUSIVE (exit 4). Without a control the verdict is at best "PASS, no control ran"')
            [CompletionResult]::new('--control', '--control', [CompletionResultType]::ParameterName, 'Run the control arm: the default, accepted for old scripts')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the report as JSON on stdout')
            [CompletionResult]::new('--processes', '--processes', [CompletionResultType]::ParameterName, 'Racers are separate processes of this binary, released together by closing the pipes they block on')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'racefree;stress;report' {
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the merged verdict as JSON')
            [CompletionResult]::new('--keep', '--keep', [CompletionResultType]::ParameterName, 'Keep every round''s tree and the rounds files. By default each round''s tree goes once it is verified (the first bad rounds'' stay, for inspection), the rounds files and the instances'' control directories go after the verdict, and verdict.json is left beside the reports')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'racefree;stress;worker' {
            [CompletionResult]::new('--racer', '--racer', [CompletionResultType]::ParameterName, 'racer')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'racefree;stress;crash-call' {
            [CompletionResult]::new('--lockfile', '--lockfile', [CompletionResultType]::ParameterName, 'hold: the lock it runs under')
            [CompletionResult]::new('--nfs', '--nfs', [CompletionResultType]::ParameterName, 'hold: the lock was taken with --nfs: its link lock must name this holder')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'racefree;stress;rmw' {
            [CompletionResult]::new('--read', '--read', [CompletionResultType]::ParameterName, 'read')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'racefree;stress;help' {
            [CompletionResult]::new('makedirs', 'makedirs', [CompletionResultType]::ParameterValue, 'Racers build the same deep trees at once; every round verified exactly')
            [CompletionResult]::new('ident', 'ident', [CompletionResultType]::ParameterValue, 'Racers look up loopback connections held in every TCP state')
            [CompletionResult]::new('counter', 'counter', [CompletionResultType]::ParameterValue, 'Racers take numbers from one counter file; all distinct, exactly 1..total')
            [CompletionResult]::new('write', 'write', [CompletionResultType]::ParameterValue, 'Writers replace one file while readers check every read is one whole version')
            [CompletionResult]::new('crash', 'crash', [CompletionResultType]::ParameterValue, 'Racers'' counter, write and lock calls are SIGKILLed mid-operation; nothing committed is lost, nothing is left')
            [CompletionResult]::new('lock', 'lock', [CompletionResultType]::ParameterValue, 'Racers increment one counter, each read-modify-write under racefree lock')
            [CompletionResult]::new('exec', 'exec', [CompletionResultType]::ParameterValue, 'Race your own command: many copies at once, judged against a sequential run')
            [CompletionResult]::new('report', 'report', [CompletionResultType]::ParameterValue, 'Merge the reports instances wrote to a shared tree into one verdict')
            [CompletionResult]::new('worker', 'worker', [CompletionResultType]::ParameterValue, 'One racer process (started by --processes; not for direct use)')
            [CompletionResult]::new('crash-call', 'crash-call', [CompletionResultType]::ParameterValue, 'One call the crash arm kills: a lock holder, or the control''s counter or writer (not for direct use)')
            [CompletionResult]::new('rmw', 'rmw', [CompletionResultType]::ParameterValue, 'One locked read-modify-write (the COMMAND of stress lock; not for direct use)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'racefree;stress;help;makedirs' {
            break
        }
        'racefree;stress;help;ident' {
            break
        }
        'racefree;stress;help;counter' {
            break
        }
        'racefree;stress;help;write' {
            break
        }
        'racefree;stress;help;crash' {
            break
        }
        'racefree;stress;help;lock' {
            break
        }
        'racefree;stress;help;exec' {
            break
        }
        'racefree;stress;help;report' {
            break
        }
        'racefree;stress;help;worker' {
            break
        }
        'racefree;stress;help;crash-call' {
            break
        }
        'racefree;stress;help;rmw' {
            break
        }
        'racefree;stress;help;help' {
            break
        }
        'racefree;lock' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Run COMMAND_STRING with ''sh -c'', as flock(1) -c does')
            [CompletionResult]::new('--command', '--command', [CompletionResultType]::ParameterName, 'Run COMMAND_STRING with ''sh -c'', as flock(1) -c does')
            [CompletionResult]::new('-w', '-w', [CompletionResultType]::ParameterName, 'Wait at most SECS seconds (fractions allowed; 0 is -n; inf, or too many to count, waits as long as it takes), then fail')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Wait at most SECS seconds (fractions allowed; 0 is -n; inf, or too many to count, waits as long as it takes), then fail')
            [CompletionResult]::new('--wait', '--wait', [CompletionResultType]::ParameterName, 'Wait at most SECS seconds (fractions allowed; 0 is -n; inf, or too many to count, waits as long as it takes), then fail')
            [CompletionResult]::new('-E', '-E ', [CompletionResultType]::ParameterName, 'Exit status when the lock is not acquired (held, with -n or -w)')
            [CompletionResult]::new('--conflict-exit-code', '--conflict-exit-code', [CompletionResultType]::ParameterName, 'Exit status when the lock is not acquired (held, with -n or -w)')
            [CompletionResult]::new('-s', '-s', [CompletionResultType]::ParameterName, 'Take a shared lock: any number of shared holders, no exclusive one')
            [CompletionResult]::new('--shared', '--shared', [CompletionResultType]::ParameterName, 'Take a shared lock: any number of shared holders, no exclusive one')
            [CompletionResult]::new('-x', '-x', [CompletionResultType]::ParameterName, 'Take an exclusive lock (the default)')
            [CompletionResult]::new('-e', '-e', [CompletionResultType]::ParameterName, 'Take an exclusive lock (the default)')
            [CompletionResult]::new('--exclusive', '--exclusive', [CompletionResultType]::ParameterName, 'Take an exclusive lock (the default)')
            [CompletionResult]::new('-u', '-u', [CompletionResultType]::ParameterName, 'Drop the lock on descriptor FD (the descriptor form only)')
            [CompletionResult]::new('--unlock', '--unlock', [CompletionResultType]::ParameterName, 'Drop the lock on descriptor FD (the descriptor form only)')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Fail at once if the lock is held, instead of waiting')
            [CompletionResult]::new('--nonblock', '--nonblock', [CompletionResultType]::ParameterName, 'Fail at once if the lock is held, instead of waiting')
            [CompletionResult]::new('--nb', '--nb', [CompletionResultType]::ParameterName, 'Fail at once if the lock is held, instead of waiting')
            [CompletionResult]::new('--nonblocking', '--nonblocking', [CompletionResultType]::ParameterName, 'Fail at once if the lock is held, instead of waiting')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'COMMAND does not inherit the lock descriptor; racefree alone holds the lock')
            [CompletionResult]::new('--close', '--close', [CompletionResultType]::ParameterName, 'COMMAND does not inherit the lock descriptor; racefree alone holds the lock')
            [CompletionResult]::new('-F', '-F ', [CompletionResultType]::ParameterName, 'Run COMMAND in racefree''s place (exec, no fork), so that COMMAND holds the lock')
            [CompletionResult]::new('--no-fork', '--no-fork', [CompletionResultType]::ParameterName, 'Run COMMAND in racefree''s place (exec, no fork), so that COMMAND holds the lock')
            [CompletionResult]::new('--nfs', '--nfs', [CompletionResultType]::ParameterName, 'Take the link(2) lock LOCKFILE.nfslock as well as flock (for NFS without locking)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say on standard error how long the lock took and what runs')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'racefree;counter' {
            [CompletionResult]::new('--add', '--add', [CompletionResultType]::ParameterName, 'Add N (may be negative)')
            [CompletionResult]::new('--init', '--init', [CompletionResultType]::ParameterName, 'The value a new counter starts from, before the first --add')
            [CompletionResult]::new('--sync', '--sync', [CompletionResultType]::ParameterName, 'fsync the file and its directory before printing the new value')
            [CompletionResult]::new('--get', '--get', [CompletionResultType]::ParameterName, 'Print the current value without changing it or taking the lock (a counter that does not exist yet reads as --init)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON object: file, value, previous (null when this call created FILE) and created')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'racefree;write' {
            [CompletionResult]::new('-m', '-m', [CompletionResultType]::ParameterName, 'Mode of the new content: octal (644) or symbolic (u=rw,go=r); default: FILE''s current mode, or 0666 & ~umask for a new file')
            [CompletionResult]::new('--mode', '--mode', [CompletionResultType]::ParameterName, 'Mode of the new content: octal (644) or symbolic (u=rw,go=r); default: FILE''s current mode, or 0666 & ~umask for a new file')
            [CompletionResult]::new('--no-follow', '--no-follow', [CompletionResultType]::ParameterName, 'A symlink at FILE is replaced by a regular file, instead of replacing its target')
            [CompletionResult]::new('--no-sync', '--no-sync', [CompletionResultType]::ParameterName, 'Skip both fsyncs: still atomic for readers, but a crash may lose the new content')
            [CompletionResult]::new('--no-empty', '--no-empty', [CompletionResultType]::ParameterName, 'Refuse to replace a non-empty FILE with empty content (exit 1, FILE untouched)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'racefree;help' {
            [CompletionResult]::new('makedirs', 'makedirs', [CompletionResultType]::ParameterValue, 'Create directories and their missing ancestors, safely under concurrency')
            [CompletionResult]::new('ident', 'ident', [CompletionResultType]::ParameterValue, 'RFC 1413 ident: look up a connection''s owner, serve identd, or query one')
            [CompletionResult]::new('stress', 'stress', [CompletionResultType]::ParameterValue, 'Run parallel racers against every command and verify every answer')
            [CompletionResult]::new('lock', 'lock', [CompletionResultType]::ParameterValue, 'Run a command while holding a file lock (flock(1) without its traps)')
            [CompletionResult]::new('counter', 'counter', [CompletionResultType]::ParameterValue, 'Add to a number stored in a file, atomically, and print the new value')
            [CompletionResult]::new('write', 'write', [CompletionResultType]::ParameterValue, 'Replace a file''s content with standard input, atomically and durably')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'racefree;help;makedirs' {
            break
        }
        'racefree;help;ident' {
            [CompletionResult]::new('lookup', 'lookup', [CompletionResultType]::ParameterValue, 'Print the user that owns a TCP connection, matched on its 4-tuple only')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Serve RFC 1413 ident under inetd, systemd socket activation, or standalone')
            [CompletionResult]::new('query', 'query', [CompletionResultType]::ParameterValue, 'Ask a host''s identd who owns a connection')
            break
        }
        'racefree;help;ident;lookup' {
            break
        }
        'racefree;help;ident;serve' {
            break
        }
        'racefree;help;ident;query' {
            break
        }
        'racefree;help;stress' {
            [CompletionResult]::new('makedirs', 'makedirs', [CompletionResultType]::ParameterValue, 'Racers build the same deep trees at once; every round verified exactly')
            [CompletionResult]::new('ident', 'ident', [CompletionResultType]::ParameterValue, 'Racers look up loopback connections held in every TCP state')
            [CompletionResult]::new('counter', 'counter', [CompletionResultType]::ParameterValue, 'Racers take numbers from one counter file; all distinct, exactly 1..total')
            [CompletionResult]::new('write', 'write', [CompletionResultType]::ParameterValue, 'Writers replace one file while readers check every read is one whole version')
            [CompletionResult]::new('crash', 'crash', [CompletionResultType]::ParameterValue, 'Racers'' counter, write and lock calls are SIGKILLed mid-operation; nothing committed is lost, nothing is left')
            [CompletionResult]::new('lock', 'lock', [CompletionResultType]::ParameterValue, 'Racers increment one counter, each read-modify-write under racefree lock')
            [CompletionResult]::new('exec', 'exec', [CompletionResultType]::ParameterValue, 'Race your own command: many copies at once, judged against a sequential run')
            [CompletionResult]::new('report', 'report', [CompletionResultType]::ParameterValue, 'Merge the reports instances wrote to a shared tree into one verdict')
            [CompletionResult]::new('worker', 'worker', [CompletionResultType]::ParameterValue, 'One racer process (started by --processes; not for direct use)')
            [CompletionResult]::new('crash-call', 'crash-call', [CompletionResultType]::ParameterValue, 'One call the crash arm kills: a lock holder, or the control''s counter or writer (not for direct use)')
            [CompletionResult]::new('rmw', 'rmw', [CompletionResultType]::ParameterValue, 'One locked read-modify-write (the COMMAND of stress lock; not for direct use)')
            break
        }
        'racefree;help;stress;makedirs' {
            break
        }
        'racefree;help;stress;ident' {
            break
        }
        'racefree;help;stress;counter' {
            break
        }
        'racefree;help;stress;write' {
            break
        }
        'racefree;help;stress;crash' {
            break
        }
        'racefree;help;stress;lock' {
            break
        }
        'racefree;help;stress;exec' {
            break
        }
        'racefree;help;stress;report' {
            break
        }
        'racefree;help;stress;worker' {
            break
        }
        'racefree;help;stress;crash-call' {
            break
        }
        'racefree;help;stress;rmw' {
            break
        }
        'racefree;help;lock' {
            break
        }
        'racefree;help;counter' {
            break
        }
        'racefree;help;write' {
            break
        }
        'racefree;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
