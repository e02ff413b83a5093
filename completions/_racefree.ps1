
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
            [CompletionResult]::new('stress', 'stress', [CompletionResultType]::ParameterValue, 'Run parallel racers against makedirs and ident and verify every answer')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'racefree;makedirs' {
            [CompletionResult]::new('-m', '-m', [CompletionResultType]::ParameterName, 'Mode of each leaf this call creates: octal (755) or symbolic (u=rwx,g=rx,o=)')
            [CompletionResult]::new('--mode', '--mode', [CompletionResultType]::ParameterName, 'Mode of each leaf this call creates: octal (755) or symbolic (u=rwx,g=rx,o=)')
            [CompletionResult]::new('--beneath', '--beneath', [CompletionResultType]::ParameterName, 'Resolve each PATH relative to DIR and never leave DIR (openat2 RESOLVE_BENEATH): ''..'' and symlinks that would escape are errors')
            [CompletionResult]::new('--from', '--from', [CompletionResultType]::ParameterName, 'Read paths from FILE (''-'' for standard input), one per line, in addition to any PATH arguments')
            [CompletionResult]::new('-j', '-j', [CompletionResultType]::ParameterName, 'How many paths to work on at once [default: the number of cores]')
            [CompletionResult]::new('--jobs', '--jobs', [CompletionResultType]::ParameterName, 'How many paths to work on at once [default: the number of cores]')
            [CompletionResult]::new('--attempts', '--attempts', [CompletionResultType]::ParameterName, 'How many times to start over when the tree changes under the walk')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print "racefree: created directory ''P''" for each directory this process created')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print "racefree: created directory ''P''" for each directory this process created')
            [CompletionResult]::new('--no-symlinks', '--no-symlinks', [CompletionResultType]::ParameterName, 'Refuse every symlink in the path; walk one component at a time with openat(O_NOFOLLOW) and mkdirat from the first component. Safe in world-writable directories, where a component could be swapped for a symlink mid-walk')
            [CompletionResult]::new('--exclusive', '--exclusive', [CompletionResultType]::ParameterName, 'Ancestors may already exist, but the leaf must be created by this call (the mkdir-as-a-lock idiom); exit 3 if it already exists')
            [CompletionResult]::new('-0', '-0', [CompletionResultType]::ParameterName, 'With --from: paths are separated by NUL bytes, not newlines')
            [CompletionResult]::new('--null', '--null', [CompletionResultType]::ParameterName, 'With --from: paths are separated by NUL bytes, not newlines')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON object per path on stdout: path, directory, created, retries, error')
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
            [CompletionResult]::new('--forward', '--forward', [CompletionResultType]::ParameterName, 'With --nat: ask the identd of a host behind this one (not a container here) on PORT, and relay its answer')
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
            [CompletionResult]::new('--listen', '--listen', [CompletionResultType]::ParameterName, 'Standalone: listen on ADDR:PORT ([V6ADDR]:PORT for IPv6; port 0 picks one); repeatable')
            [CompletionResult]::new('--mode', '--mode', [CompletionResultType]::ParameterName, 'How the server was started')
            [CompletionResult]::new('--max-conns', '--max-conns', [CompletionResultType]::ParameterName, 'Standalone and inetd wait: connections served at once; more are closed at once')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Seconds a request line may take to arrive in full, counted from the previous one (RFC 1413 suggests 60 to 180)')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'After binding, drop to this user (setgroups, setgid, setuid) and verify the drop')
            [CompletionResult]::new('--hide', '--hide', [CompletionResultType]::ParameterName, 'Answer HIDDEN-USER for this user (name or uid); repeatable')
            [CompletionResult]::new('--source', '--source', [CompletionResultType]::ParameterName, 'Where to read the kernel''s socket table')
            [CompletionResult]::new('--forward', '--forward', [CompletionResultType]::ParameterName, 'With --nat: ask the identd of a host behind this one (not a container here) on PORT, and relay its answer')
            [CompletionResult]::new('--proxy', '--proxy', [CompletionResultType]::ParameterName, 'Answer queries forwarded by this NAT host (`racefree ident serve --nat --forward` or oidentd -f) about this host''s connections by ports alone; repeatable')
            [CompletionResult]::new('--log', '--log', [CompletionResultType]::ParameterName, 'Where to log queries and errors [default: syslog under inetd and systemd, stderr standalone]')
            [CompletionResult]::new('--hide-all', '--hide-all', [CompletionResultType]::ParameterName, 'Answer HIDDEN-USER for everyone')
            [CompletionResult]::new('--numeric', '--numeric', [CompletionResultType]::ParameterName, 'Answer `USERID : OTHER : <uid>` instead of the user name')
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
            [CompletionResult]::new('--bind', '--bind', [CompletionResultType]::ParameterName, 'Connect from this local address (identd answers only about connections of the address it is asked from)')
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
            [CompletionResult]::new('--duration', '--duration', [CompletionResultType]::ParameterName, 'Seconds for each of the two modes')
            [CompletionResult]::new('--racers', '--racers', [CompletionResultType]::ParameterName, 'Racers per mode [default: 4 x cores]')
            [CompletionResult]::new('--processes', '--processes', [CompletionResultType]::ParameterName, 'Racers are separate processes of this binary instead of threads')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the report as JSON on stdout')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('makedirs', 'makedirs', [CompletionResultType]::ParameterValue, 'Racers build the same deep trees at once; every round verified exactly')
            [CompletionResult]::new('ident', 'ident', [CompletionResultType]::ParameterValue, 'Racers look up loopback connections held in every TCP state')
            [CompletionResult]::new('report', 'report', [CompletionResultType]::ParameterValue, 'Merge the JSON reports instances wrote to a shared tree into one verdict')
            [CompletionResult]::new('worker', 'worker', [CompletionResultType]::ParameterValue, 'One racer process (started by --processes; not for direct use)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'racefree;stress;makedirs' {
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'The tree under test (any mount, network filesystems included). The run works in a new subdirectory it creates there [default: a fresh temporary directory]')
            [CompletionResult]::new('--depth', '--depth', [CompletionResultType]::ParameterName, 'Levels below each round''s directory')
            [CompletionResult]::new('--fanout', '--fanout', [CompletionResultType]::ParameterName, 'Subdirectories per level (fanout^depth leaf paths per round)')
            [CompletionResult]::new('--racers', '--racers', [CompletionResultType]::ParameterName, 'How many racers [default: 4 x cores]')
            [CompletionResult]::new('--rounds', '--rounds', [CompletionResultType]::ParameterName, 'Run exactly R rounds')
            [CompletionResult]::new('--duration', '--duration', [CompletionResultType]::ParameterName, 'Run rounds until S seconds have passed (at least one round)')
            [CompletionResult]::new('--barrier-file', '--barrier-file', [CompletionResultType]::ParameterName, 'Across hosts: wait at this file on the shared tree until --expect instances have arrived, then start together. Needs --dir; every instance races in DIR/racefree-stress-NAME, which is kept, with each instance''s report-ID.json, for `racefree stress report`. Use a fresh PATH per run')
            [CompletionResult]::new('--expect', '--expect', [CompletionResultType]::ParameterName, 'With --barrier-file: how many instances to wait for')
            [CompletionResult]::new('--id', '--id', [CompletionResultType]::ParameterName, 'This instance''s id [default: SLURM_PROCID, OMPI_COMM_WORLD_RANK, JOB_COMPLETION_INDEX, or 0]')
            [CompletionResult]::new('--barrier-timeout', '--barrier-timeout', [CompletionResultType]::ParameterName, 'With --barrier-file: seconds to wait for the others before giving up')
            [CompletionResult]::new('--churn', '--churn', [CompletionResultType]::ParameterName, 'Also run removers that rmdir directories while the racers create them; makedirs'' retries must hold, and the report counts them')
            [CompletionResult]::new('--keep', '--keep', [CompletionResultType]::ParameterName, 'Keep the work directory instead of removing it at the end')
            [CompletionResult]::new('--processes', '--processes', [CompletionResultType]::ParameterName, 'Racers are separate processes of this binary, released together by closing the pipes they block on')
            [CompletionResult]::new('--control', '--control', [CompletionResultType]::ParameterName, 'Also run the known-bad control arm under the same load and report its failures beside racefree''s (the exit status ignores them)')
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
            [CompletionResult]::new('--rounds', '--rounds', [CompletionResultType]::ParameterName, 'Run exactly R rounds')
            [CompletionResult]::new('--duration', '--duration', [CompletionResultType]::ParameterName, 'Run rounds until S seconds have passed (at least one round)')
            [CompletionResult]::new('--barrier-file', '--barrier-file', [CompletionResultType]::ParameterName, 'Across hosts: wait at this file on the shared tree until --expect instances have arrived, then start together. Needs --dir; every instance races in DIR/racefree-stress-NAME, which is kept, with each instance''s report-ID.json, for `racefree stress report`. Use a fresh PATH per run')
            [CompletionResult]::new('--expect', '--expect', [CompletionResultType]::ParameterName, 'With --barrier-file: how many instances to wait for')
            [CompletionResult]::new('--id', '--id', [CompletionResultType]::ParameterName, 'This instance''s id [default: SLURM_PROCID, OMPI_COMM_WORLD_RANK, JOB_COMPLETION_INDEX, or 0]')
            [CompletionResult]::new('--barrier-timeout', '--barrier-timeout', [CompletionResultType]::ParameterName, 'With --barrier-file: seconds to wait for the others before giving up')
            [CompletionResult]::new('--via-server', '--via-server', [CompletionResultType]::ParameterName, 'Also send every lookup over RFC 1413 to a `racefree ident serve --listen` this run starts on loopback, end to end')
            [CompletionResult]::new('--processes', '--processes', [CompletionResultType]::ParameterName, 'Racers are separate processes of this binary, released together by closing the pipes they block on')
            [CompletionResult]::new('--control', '--control', [CompletionResultType]::ParameterName, 'Also run the known-bad control arm under the same load and report its failures beside racefree''s (the exit status ignores them)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the report as JSON on stdout')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'racefree;stress;report' {
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the merged verdict as JSON')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'racefree;stress;worker' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('makedirs', 'makedirs', [CompletionResultType]::ParameterValue, 'The body of a racer process (`racefree stress worker makedirs`)')
            [CompletionResult]::new('ident', 'ident', [CompletionResultType]::ParameterValue, 'ident')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'racefree;stress;worker;makedirs' {
            [CompletionResult]::new('--arm', '--arm', [CompletionResultType]::ParameterName, 'arm')
            [CompletionResult]::new('--round-dir', '--round-dir', [CompletionResultType]::ParameterName, 'round-dir')
            [CompletionResult]::new('--depth', '--depth', [CompletionResultType]::ParameterName, 'depth')
            [CompletionResult]::new('--fanout', '--fanout', [CompletionResultType]::ParameterName, 'fanout')
            [CompletionResult]::new('--seed', '--seed', [CompletionResultType]::ParameterName, 'seed')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'racefree;stress;worker;ident' {
            [CompletionResult]::new('--spec', '--spec', [CompletionResultType]::ParameterName, 'spec')
            [CompletionResult]::new('--seed', '--seed', [CompletionResultType]::ParameterName, 'seed')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'racefree;stress;worker;help' {
            [CompletionResult]::new('makedirs', 'makedirs', [CompletionResultType]::ParameterValue, 'The body of a racer process (`racefree stress worker makedirs`)')
            [CompletionResult]::new('ident', 'ident', [CompletionResultType]::ParameterValue, 'ident')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'racefree;stress;worker;help;makedirs' {
            break
        }
        'racefree;stress;worker;help;ident' {
            break
        }
        'racefree;stress;worker;help;help' {
            break
        }
        'racefree;stress;help' {
            [CompletionResult]::new('makedirs', 'makedirs', [CompletionResultType]::ParameterValue, 'Racers build the same deep trees at once; every round verified exactly')
            [CompletionResult]::new('ident', 'ident', [CompletionResultType]::ParameterValue, 'Racers look up loopback connections held in every TCP state')
            [CompletionResult]::new('report', 'report', [CompletionResultType]::ParameterValue, 'Merge the JSON reports instances wrote to a shared tree into one verdict')
            [CompletionResult]::new('worker', 'worker', [CompletionResultType]::ParameterValue, 'One racer process (started by --processes; not for direct use)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'racefree;stress;help;makedirs' {
            break
        }
        'racefree;stress;help;ident' {
            break
        }
        'racefree;stress;help;report' {
            break
        }
        'racefree;stress;help;worker' {
            [CompletionResult]::new('makedirs', 'makedirs', [CompletionResultType]::ParameterValue, 'The body of a racer process (`racefree stress worker makedirs`)')
            [CompletionResult]::new('ident', 'ident', [CompletionResultType]::ParameterValue, 'ident')
            break
        }
        'racefree;stress;help;worker;makedirs' {
            break
        }
        'racefree;stress;help;worker;ident' {
            break
        }
        'racefree;stress;help;help' {
            break
        }
        'racefree;help' {
            [CompletionResult]::new('makedirs', 'makedirs', [CompletionResultType]::ParameterValue, 'Create directories and their missing ancestors, safely under concurrency')
            [CompletionResult]::new('ident', 'ident', [CompletionResultType]::ParameterValue, 'RFC 1413 ident: look up a connection''s owner, serve identd, or query one')
            [CompletionResult]::new('stress', 'stress', [CompletionResultType]::ParameterValue, 'Run parallel racers against makedirs and ident and verify every answer')
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
            [CompletionResult]::new('report', 'report', [CompletionResultType]::ParameterValue, 'Merge the JSON reports instances wrote to a shared tree into one verdict')
            [CompletionResult]::new('worker', 'worker', [CompletionResultType]::ParameterValue, 'One racer process (started by --processes; not for direct use)')
            break
        }
        'racefree;help;stress;makedirs' {
            break
        }
        'racefree;help;stress;ident' {
            break
        }
        'racefree;help;stress;report' {
            break
        }
        'racefree;help;stress;worker' {
            [CompletionResult]::new('makedirs', 'makedirs', [CompletionResultType]::ParameterValue, 'The body of a racer process (`racefree stress worker makedirs`)')
            [CompletionResult]::new('ident', 'ident', [CompletionResultType]::ParameterValue, 'ident')
            break
        }
        'racefree;help;stress;worker;makedirs' {
            break
        }
        'racefree;help;stress;worker;ident' {
            break
        }
        'racefree;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
