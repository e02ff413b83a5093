
use builtin;
use str;

set edit:completion:arg-completer[racefree] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'racefree'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'racefree'= {
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand makedirs 'Create directories and their missing ancestors, safely under concurrency'
            cand ident 'RFC 1413 ident: look up a connection''s owner, serve identd, or query one'
            cand stress 'Run parallel racers against every command and verify every answer'
            cand lock 'Run a command while holding a file lock (flock(1) without its traps)'
            cand counter 'Add to a number stored in a file, atomically, and print the new value'
            cand write 'Replace a file''s content with standard input, atomically and durably'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'racefree;makedirs'= {
            cand -m 'Mode of each leaf this call creates, as GNU mkdir -m gives it: octal (755, 00755) or chmod(1)''s symbolic grammar (u=rwx,g=rx,o=, a+X, go-w, -w, =rx, +t); a clause without u/g/o/a is limited by the umask, and ''='' grants only what it names'
            cand --mode 'Mode of each leaf this call creates, as GNU mkdir -m gives it: octal (755, 00755) or chmod(1)''s symbolic grammar (u=rwx,g=rx,o=, a+X, go-w, -w, =rx, +t); a clause without u/g/o/a is limited by the umask, and ''='' grants only what it names'
            cand -Z 'Refused: racefree sets no SELinux or SMACK security context (mkdir -Z, --context[=CTX])'
            cand --context 'Refused: racefree sets no SELinux or SMACK security context (mkdir -Z, --context[=CTX])'
            cand --beneath 'Resolve each PATH relative to DIR and never leave DIR (openat2 RESOLVE_BENEATH): ''..'' and symlinks that would escape are errors. Each new directory is resolved again from DIR after mkdir; if a directory the walk held was moved out of DIR meanwhile, the one just made (outside) is removed again and the PATH fails: no directory this call made is left outside DIR, unless something was put into it in that instant (the error then says so)'
            cand --from 'Read paths from FILE (''-'' for standard input), one per line, after any PATH arguments. Read as a stream, 4096 paths at a time, so memory stays flat however long the list; an entry is at most 1 MiB. The first bad entry (empty, holding a NUL, too long) is a usage error naming its position: the paths before it are made and reported, none after it'
            cand -j 'How many paths to work on at once [default: the number of cores]. Never more threads than there are paths, nor than 4 per core (at least 64)'
            cand --jobs 'How many paths to work on at once [default: the number of cores]. Never more threads than there are paths, nor than 4 per core (at least 64)'
            cand --attempts 'How many times to start over when the tree changes under the walk'
            cand -p 'Accepted for mkdir -p''s sake and changes nothing: missing parents are always made, and an existing directory is always fine'
            cand --parents 'Accepted for mkdir -p''s sake and changes nothing: missing parents are always made, and an existing directory is always fine'
            cand -v 'Print "racefree: created directory ''P''" for each directory this process created. Names are quoted as GNU mkdir -v quotes them in the C locale: ''nl''$''\n''''x'''
            cand --verbose 'Print "racefree: created directory ''P''" for each directory this process created. Names are quoted as GNU mkdir -v quotes them in the C locale: ''nl''$''\n''''x'''
            cand --no-symlinks 'Refuse every symlink in the path; walk one component at a time with openat(O_NOFOLLOW) and mkdirat from the first component. Safe in world-writable directories, where a component could be swapped for a symlink mid-walk'
            cand --exclusive 'Ancestors may already exist, but the leaf must be created by this call (the mkdir-as-a-lock idiom); exit 3 if it already exists'
            cand -0 'With --from: paths are separated by NUL bytes, not newlines'
            cand --null 'With --from: paths are separated by NUL bytes, not newlines'
            cand --json 'Print one JSON object per path on stdout: path, directory, created, retries, error. Lossless: a path that is not UTF-8 is written as {"bytes_hex": "<its bytes in hex>"}'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'racefree;ident'= {
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand lookup 'Print the user that owns a TCP connection, matched on its 4-tuple only'
            cand serve 'Serve RFC 1413 ident under inetd, systemd socket activation, or standalone'
            cand query 'Ask a host''s identd who owns a connection'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'racefree;ident;lookup'= {
            cand --source 'Where to read the kernel''s socket table'
            cand --forward 'With --nat: ask the identd of a host behind this one (not a container here) on PORT, and relay its answer (ident serve --user makes that query as the user; only reading conntrack, to know whom to ask, stays privileged)'
            cand --numeric 'Print the uid instead of the user name'
            cand --json 'Print uid, user, state, inode and source as one JSON object'
            cand --nat 'Answer for connections this host translated (masquerade, SNAT): look the conntrack entry up, then the container holding the original connection (needs root)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'racefree;ident;serve'= {
            cand --listen 'Standalone: listen on ADDR:PORT ([V6ADDR]:PORT, or [V6ADDR%SCOPE]:PORT for a link-local one), or on every address, IPv4 and IPv6, with PORT or :PORT (port 0 picks one); repeatable'
            cand --mode 'How the server was started'
            cand --max-conns 'Standalone and inetd wait: connections served at once; when all are taken, a new one replaces the oldest idle one (no complete request yet) of the address holding the most, or is closed if none is idle. At most what RLIMIT_NOFILE allows (the soft limit is raised as needed; the log says when the hard limit bounds it)'
            cand --max-conns-per-addr 'Connections one address may hold (IPv6: one /64, what a host is given); a new one past it takes the place of that address''s oldest idle one, or is closed if none is idle [default: half of --max-conns]'
            cand --first-line-timeout 'Seconds a new connection may take to send its first request line in full (at most --timeout)'
            cand --timeout 'Seconds a request line may take to arrive in full, counted from the previous one (RFC 1413 suggests 60 to 180)'
            cand --user 'After binding, run everything that reads the network as this user (its uid and gid, no other group, no capability; verified). A forked helper alone stays root, for one question: who owns a connection and may they be named, since ~/.noident sits in homes often closed (0700) to anyone but their owner and root. The helper takes only the two ports and the ident connection itself, and answers only about that connection''s own addresses. With --nat and --proxy the helper also resolves what this host''s own table lacks (conntrack, containers'' tables and their /etc/passwd: root''s to read). With --forward the helper only says which host and ports to ask, since only conntrack, read as root, knows; the query to that host and its reply (network input) are made and parsed as this user, and a host that never answers holds no helper worker'
            cand --hide 'Answer HIDDEN-USER for this user (name or uid); repeatable'
            cand -r 'When no owner is found or the lookup fails, answer USERID with this user id instead of NO-USER or UNKNOWN-ERROR; a hidden user stays HIDDEN-USER (oidentd -r)'
            cand --reply 'When no owner is found or the lookup fails, answer USERID with this user id instead of NO-USER or UNKNOWN-ERROR; a hidden user stays HIDDEN-USER (oidentd -r)'
            cand -R 'Answer every well-formed request USERID with this user id, looking nothing up (oidentd -R)'
            cand --reply-all 'Answer every well-formed request USERID with this user id, looking nothing up (oidentd -R)'
            cand -o 'The operating system field of every USERID reply; OTHER when given without a value [default: UNIX for a name, OTHER for a uid] (oidentd -o)'
            cand --other 'The operating system field of every USERID reply; OTHER when given without a value [default: UNIX for a name, OTHER for a uid] (oidentd -o)'
            cand -c 'Name this character set in USERID replies, after the OS: `UNIX,UTF-8` (oidentd -c)'
            cand --charset 'Name this character set in USERID replies, after the OS: `UNIX,UTF-8` (oidentd -c)'
            cand --source 'Where to read the kernel''s socket table (what each costs: bench/RESULTS-identd.md)'
            cand --forward 'With --nat: ask the identd of a host behind this one (not a container here) on PORT, and relay its answer (ident serve --user makes that query as the user; only reading conntrack, to know whom to ask, stays privileged)'
            cand --proxy 'Answer queries forwarded by this NAT host (`racefree ident serve --nat --forward` or oidentd -f) about this host''s connections by ports alone; repeatable'
            cand --log 'Where to log queries and errors [default: syslog under inetd and systemd, stderr standalone]'
            cand --config 'Apply oidentd.conf(5): the system FILE (without one, /etc/oidentd.conf, where no such file means oidentd''s defaults) and users'' ~/.config/oidentd.conf or ~/.oidentd.conf where it lets them matter. SIGHUP reads FILE again'
            cand -C 'oidentd''s spelling of --config=FILE'
            cand --hide-all 'Answer HIDDEN-USER for everyone'
            cand --numeric 'Answer `USERID : OTHER : <uid>` instead of the user name'
            cand -e 'Answer UNKNOWN-ERROR for every error, NO-USER, HIDDEN-USER and INVALID-PORT included, so a querier cannot tell a hidden user from an absent one (oidentd -e)'
            cand --error 'Answer UNKNOWN-ERROR for every error, NO-USER, HIDDEN-USER and INVALID-PORT included, so a querier cannot tell a hidden user from an absent one (oidentd -e)'
            cand --nat 'Answer for connections this host translated (masquerade, SNAT): look the conntrack entry up, then the container holding the original connection (needs root)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'racefree;ident;query'= {
            cand --port 'identd''s port on HOST'
            cand --timeout 'Give up after this many seconds (connect, send and reply together)'
            cand --bind 'Connect from this local address (identd answers only about connections of the address it is asked from); a link-local one names its interface, fe80::2%eth0'
            cand --json 'Print the reply as one JSON object, whatever its verdict (USERID, ERROR, invalid)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'racefree;ident;help'= {
            cand lookup 'Print the user that owns a TCP connection, matched on its 4-tuple only'
            cand serve 'Serve RFC 1413 ident under inetd, systemd socket activation, or standalone'
            cand query 'Ask a host''s identd who owns a connection'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'racefree;ident;help;lookup'= {
        }
        &'racefree;ident;help;serve'= {
        }
        &'racefree;ident;help;query'= {
        }
        &'racefree;ident;help;help'= {
        }
        &'racefree;stress'= {
            cand --duration 'Seconds for each arm, and on while its control has not failed: up to 4 x S'
            cand --racers 'Racers per arm [default: 4 x cores]'
            cand --processes 'Racers are separate processes of this binary instead of threads'
            cand --no-control 'Race no control arm beside each arm: the verdict is then at best "PASS, no control ran"'
            cand --json 'Print the report as JSON on stdout'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand makedirs 'Racers build the same deep trees at once; every round verified exactly'
            cand ident 'Racers look up loopback connections held in every TCP state'
            cand counter 'Racers take numbers from one counter file; all distinct, exactly 1..total'
            cand write 'Writers replace one file while readers check every read is one whole version'
            cand crash 'Racers'' counter, write and lock calls are SIGKILLed mid-operation; nothing committed is lost, nothing is left'
            cand lock 'Racers increment one counter, each read-modify-write under racefree lock'
            cand exec 'Race your own command: many copies at once, judged against a sequential run'
            cand report 'Merge the reports instances wrote to a shared tree into one verdict'
            cand worker 'One racer process (started by --processes; not for direct use)'
            cand crash-call 'One call the crash arm kills: a lock holder, or the control''s counter or writer (not for direct use)'
            cand rmw 'One locked read-modify-write (the COMMAND of stress lock; not for direct use)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'racefree;stress;makedirs'= {
            cand --depth 'Levels below each round''s directory'
            cand --fanout 'Subdirectories per level (fanout^depth leaf paths per round, at most 100000)'
            cand --dir 'The tree under test (any mount, network filesystems included); it must exist. The run works in a new subdirectory it creates there [default: $TMPDIR]'
            cand --racers 'How many racers [default: 4 x cores]'
            cand --rounds 'Run R rounds, and more while the control has not failed: up to 4 x R'
            cand --duration 'Run rounds until S seconds have passed (at least one round), and on while the control has not failed: up to 4 x S'
            cand --barrier-file 'Across hosts: wait at this file on the shared tree until --expect instances have arrived (PATH.arrived.ID), then start together at the instant the first to see them all publishes in PATH.start. Needs --dir; every instance races in DIR/racefree-stress-NAME, which is kept, with each instance''s report-ID.json, for `racefree stress report`, which removes each round''s tree once it has verified it. Each instance races its control on its own, in DIR/racefree-stress-NAME/controls-ID, removed as it goes. Use a fresh PATH per run'
            cand --expect 'With --barrier-file: how many instances to wait for'
            cand --id 'This instance''s id [default: OMPI_COMM_WORLD_RANK, SLURM_PROCID, JOB_COMPLETION_INDEX, or 0]'
            cand --barrier-timeout 'With --barrier-file: seconds to wait for the others before giving up'
            cand --max-entries 'With --barrier-file: the directory entries this instance''s rounds may leave for `stress report`, in total: it races no round that would pass them, and refuses a round larger than them'
            cand --churn 'Also run removers that rmdir directories while the racers create them (as many removals a round as the tree has directories); makedirs'' retries must hold, and the report counts them'
            cand --keep 'Keep the work directory instead of removing it at the end'
            cand --processes 'Racers are separate processes of this binary, released together by closing the pipes they block on'
            cand --no-control 'Run no control arm. By default every run races the known-bad control beside racefree''s arm, under the same load, and keeps racing past --duration (up to 4 x --duration, or 4 x --rounds) while the control has not failed: a run whose control never failed is INCONCLUSIVE (exit 4). Without a control the verdict is at best "PASS, no control ran"'
            cand --control 'Run the control arm: the default, accepted for old scripts'
            cand --json 'Print the report as JSON on stdout'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'racefree;stress;ident'= {
            cand --connections 'Connection pairs held in each TCP state'
            cand --source 'Which lookup the racers use'
            cand --racers 'How many racers [default: 4 x cores]'
            cand --rounds 'Run R rounds, and more while the control has not failed: up to 4 x R'
            cand --duration 'Run rounds until S seconds have passed (at least one round), and on while the control has not failed: up to 4 x S'
            cand --barrier-file 'Across hosts: wait at this file on the shared tree until --expect instances have arrived (PATH.arrived.ID), then start together at the instant the first to see them all publishes in PATH.start. Needs --dir; every instance races in DIR/racefree-stress-NAME, which is kept, with each instance''s report-ID.json, for `racefree stress report`, which removes each round''s tree once it has verified it. Each instance races its control on its own, in DIR/racefree-stress-NAME/controls-ID, removed as it goes. Use a fresh PATH per run'
            cand --expect 'With --barrier-file: how many instances to wait for'
            cand --id 'This instance''s id [default: OMPI_COMM_WORLD_RANK, SLURM_PROCID, JOB_COMPLETION_INDEX, or 0]'
            cand --barrier-timeout 'With --barrier-file: seconds to wait for the others before giving up'
            cand --max-entries 'With --barrier-file: the directory entries this instance''s rounds may leave for `stress report`, in total: it races no round that would pass them, and refuses a round larger than them'
            cand --via-server 'Also send every lookup over RFC 1413 to a `racefree ident serve --listen` this run starts on loopback, end to end'
            cand --processes 'Racers are separate processes of this binary, released together by closing the pipes they block on'
            cand --no-control 'Run no control arm. By default every run races the known-bad control beside racefree''s arm, under the same load, and keeps racing past --duration (up to 4 x --duration, or 4 x --rounds) while the control has not failed: a run whose control never failed is INCONCLUSIVE (exit 4). Without a control the verdict is at best "PASS, no control ran"'
            cand --control 'Run the control arm: the default, accepted for old scripts'
            cand --json 'Print the report as JSON on stdout'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'racefree;stress;counter'= {
            cand --takes 'Numbers each racer takes per round'
            cand --dir 'The tree under test (any mount, network filesystems included); it must exist. The run works in a new subdirectory it creates there [default: $TMPDIR]'
            cand --racers 'How many racers [default: 4 x cores]'
            cand --rounds 'Run R rounds, and more while the control has not failed: up to 4 x R'
            cand --duration 'Run rounds until S seconds have passed (at least one round), and on while the control has not failed: up to 4 x S'
            cand --barrier-file 'Across hosts: wait at this file on the shared tree until --expect instances have arrived (PATH.arrived.ID), then start together at the instant the first to see them all publishes in PATH.start. Needs --dir; every instance races in DIR/racefree-stress-NAME, which is kept, with each instance''s report-ID.json, for `racefree stress report`, which removes each round''s tree once it has verified it. Each instance races its control on its own, in DIR/racefree-stress-NAME/controls-ID, removed as it goes. Use a fresh PATH per run'
            cand --expect 'With --barrier-file: how many instances to wait for'
            cand --id 'This instance''s id [default: OMPI_COMM_WORLD_RANK, SLURM_PROCID, JOB_COMPLETION_INDEX, or 0]'
            cand --barrier-timeout 'With --barrier-file: seconds to wait for the others before giving up'
            cand --max-entries 'With --barrier-file: the directory entries this instance''s rounds may leave for `stress report`, in total: it races no round that would pass them, and refuses a round larger than them'
            cand --keep 'Keep the work directory instead of removing it at the end'
            cand --processes 'Racers are separate processes of this binary, released together by closing the pipes they block on'
            cand --no-control 'Run no control arm. By default every run races the known-bad control beside racefree''s arm, under the same load, and keeps racing past --duration (up to 4 x --duration, or 4 x --rounds) while the control has not failed: a run whose control never failed is INCONCLUSIVE (exit 4). Without a control the verdict is at best "PASS, no control ran"'
            cand --control 'Run the control arm: the default, accepted for old scripts'
            cand --json 'Print the report as JSON on stdout'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'racefree;stress;write'= {
            cand --versions 'Versions each writer writes per round'
            cand --reads 'Reads each reader makes per round at least (and more, until the writers are done)'
            cand --dir 'The tree under test (any mount, network filesystems included); it must exist. The run works in a new subdirectory it creates there [default: $TMPDIR]'
            cand --racers 'How many racers [default: 4 x cores]'
            cand --rounds 'Run R rounds, and more while the control has not failed: up to 4 x R'
            cand --duration 'Run rounds until S seconds have passed (at least one round), and on while the control has not failed: up to 4 x S'
            cand --barrier-file 'Across hosts: wait at this file on the shared tree until --expect instances have arrived (PATH.arrived.ID), then start together at the instant the first to see them all publishes in PATH.start. Needs --dir; every instance races in DIR/racefree-stress-NAME, which is kept, with each instance''s report-ID.json, for `racefree stress report`, which removes each round''s tree once it has verified it. Each instance races its control on its own, in DIR/racefree-stress-NAME/controls-ID, removed as it goes. Use a fresh PATH per run'
            cand --expect 'With --barrier-file: how many instances to wait for'
            cand --id 'This instance''s id [default: OMPI_COMM_WORLD_RANK, SLURM_PROCID, JOB_COMPLETION_INDEX, or 0]'
            cand --barrier-timeout 'With --barrier-file: seconds to wait for the others before giving up'
            cand --max-entries 'With --barrier-file: the directory entries this instance''s rounds may leave for `stress report`, in total: it races no round that would pass them, and refuses a round larger than them'
            cand --keep 'Keep the work directory instead of removing it at the end'
            cand --processes 'Racers are separate processes of this binary, released together by closing the pipes they block on'
            cand --no-control 'Run no control arm. By default every run races the known-bad control beside racefree''s arm, under the same load, and keeps racing past --duration (up to 4 x --duration, or 4 x --rounds) while the control has not failed: a run whose control never failed is INCONCLUSIVE (exit 4). Without a control the verdict is at best "PASS, no control ran"'
            cand --control 'Run the control arm: the default, accepted for old scripts'
            cand --json 'Print the report as JSON on stdout'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'racefree;stress;crash'= {
            cand --calls 'Calls each racer makes per round (fewer once --duration is over)'
            cand --sabotage 'Break racefree''s arm on purpose (for the tests)'
            cand --dir 'The tree under test (any mount, network filesystems included); it must exist. The run works in a new subdirectory it creates there [default: $TMPDIR]'
            cand --racers 'How many racers [default: 4 x cores]'
            cand --rounds 'Run R rounds, and more while the control has not failed: up to 4 x R'
            cand --duration 'Run rounds until S seconds have passed (at least one round), and on while the control has not failed: up to 4 x S'
            cand --barrier-file 'Across hosts: wait at this file on the shared tree until --expect instances have arrived (PATH.arrived.ID), then start together at the instant the first to see them all publishes in PATH.start. Needs --dir; every instance races in DIR/racefree-stress-NAME, which is kept, with each instance''s report-ID.json, for `racefree stress report`, which removes each round''s tree once it has verified it. Each instance races its control on its own, in DIR/racefree-stress-NAME/controls-ID, removed as it goes. Use a fresh PATH per run'
            cand --expect 'With --barrier-file: how many instances to wait for'
            cand --id 'This instance''s id [default: OMPI_COMM_WORLD_RANK, SLURM_PROCID, JOB_COMPLETION_INDEX, or 0]'
            cand --barrier-timeout 'With --barrier-file: seconds to wait for the others before giving up'
            cand --max-entries 'With --barrier-file: the directory entries this instance''s rounds may leave for `stress report`, in total: it races no round that would pass them, and refuses a round larger than them'
            cand --keep 'Keep the work directory instead of removing it at the end'
            cand --processes 'Racers are separate processes of this binary, released together by closing the pipes they block on'
            cand --no-control 'Run no control arm. By default every run races the known-bad control beside racefree''s arm, under the same load, and keeps racing past --duration (up to 4 x --duration, or 4 x --rounds) while the control has not failed: a run whose control never failed is INCONCLUSIVE (exit 4). Without a control the verdict is at best "PASS, no control ran"'
            cand --control 'Run the control arm: the default, accepted for old scripts'
            cand --json 'Print the report as JSON on stdout'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'racefree;stress;lock'= {
            cand --increments 'Increments each racer makes per round'
            cand --dir 'The tree under test (any mount, network filesystems included); it must exist. The run works in a new subdirectory it creates there [default: $TMPDIR]'
            cand --racers 'How many racers [default: 4 x cores]'
            cand --rounds 'Run R rounds, and more while the control has not failed: up to 4 x R'
            cand --duration 'Run rounds until S seconds have passed (at least one round), and on while the control has not failed: up to 4 x S'
            cand --barrier-file 'Across hosts: wait at this file on the shared tree until --expect instances have arrived (PATH.arrived.ID), then start together at the instant the first to see them all publishes in PATH.start. Needs --dir; every instance races in DIR/racefree-stress-NAME, which is kept, with each instance''s report-ID.json, for `racefree stress report`, which removes each round''s tree once it has verified it. Each instance races its control on its own, in DIR/racefree-stress-NAME/controls-ID, removed as it goes. Use a fresh PATH per run'
            cand --expect 'With --barrier-file: how many instances to wait for'
            cand --id 'This instance''s id [default: OMPI_COMM_WORLD_RANK, SLURM_PROCID, JOB_COMPLETION_INDEX, or 0]'
            cand --barrier-timeout 'With --barrier-file: seconds to wait for the others before giving up'
            cand --max-entries 'With --barrier-file: the directory entries this instance''s rounds may leave for `stress report`, in total: it races no round that would pass them, and refuses a round larger than them'
            cand --keep 'Keep the work directory instead of removing it at the end'
            cand --processes 'Racers are separate processes of this binary, released together by closing the pipes they block on'
            cand --no-control 'Run no control arm. By default every run races the known-bad control beside racefree''s arm, under the same load, and keeps racing past --duration (up to 4 x --duration, or 4 x --rounds) while the control has not failed: a run whose control never failed is INCONCLUSIVE (exit 4). Without a control the verdict is at best "PASS, no control ran"'
            cand --control 'Run the control arm: the default, accepted for old scripts'
            cand --json 'Print the report as JSON on stdout'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'racefree;stress;exec'= {
            cand --template 'Copy this directory into each round''s directory first'
            cand --setup 'Before the racers, run CMD with ''sh -c'' in the round''s directory (and in the sequential run''s)'
            cand --check 'After the racers, run CMD with ''sh -c'' in the round''s directory: exit 0 means the state is right. RACEFREE_RACERS and RACEFREE_ROUND are set'
            cand --ignore 'With --compare-sequential: names that may differ; without a ''/'' a name at any depth, with one a path from the round''s directory (repeatable)'
            cand --expect-exit 'The exit status every racer must end with'
            cand --timeout 'Seconds a round''s racers may run before they count as hung (their process groups are killed, and the round fails)'
            cand --widen 'Widen race windows by holding back each racer''s calls that change the filesystem (mkdir, an open for writing, rename, link, unlink). Rounds take turns: every racer''s first such call held until all racers have reached theirs, then let go together; every such call delayed MS; none held. 0 turns it off. A hold only picks a schedule the kernel could pick itself, so what fails under it is a real race. Racers of a user other than root then run with no_new_privs (setuid programs get no privileges)'
            cand --dir 'The tree under test (any mount, network filesystems included); it must exist. The run works in a new subdirectory it creates there [default: $TMPDIR]'
            cand --racers 'How many racers [default: 4 x cores]'
            cand --rounds 'Run R rounds, and more while the control has not failed: up to 4 x R'
            cand --duration 'Run rounds until S seconds have passed (at least one round), and on while the control has not failed: up to 4 x S'
            cand --barrier-file 'Across hosts: wait at this file on the shared tree until --expect instances have arrived (PATH.arrived.ID), then start together at the instant the first to see them all publishes in PATH.start. Needs --dir; every instance races in DIR/racefree-stress-NAME, which is kept, with each instance''s report-ID.json, for `racefree stress report`, which removes each round''s tree once it has verified it. Each instance races its control on its own, in DIR/racefree-stress-NAME/controls-ID, removed as it goes. Use a fresh PATH per run'
            cand --expect 'With --barrier-file: how many instances to wait for'
            cand --id 'This instance''s id [default: OMPI_COMM_WORLD_RANK, SLURM_PROCID, JOB_COMPLETION_INDEX, or 0]'
            cand --barrier-timeout 'With --barrier-file: seconds to wait for the others before giving up'
            cand --max-entries 'With --barrier-file: the directory entries this instance''s rounds may leave for `stress report`, in total: it races no round that would pass them, and refuses a round larger than them'
            cand --compare-sequential 'The tree the racers leave must equal the one the same commands leave run one after another in a twin directory (names, types, modes, sizes, contents)'
            cand --stop-on-first 'End the run at the first failing round'
            cand --keep 'Keep the work directory instead of removing it at the end'
            cand --no-control 'Run no control arm. By default every run races the known-bad control beside racefree''s arm, under the same load, and keeps racing past --duration (up to 4 x --duration, or 4 x --rounds) while the control has not failed: a run whose control never failed is INCONCLUSIVE (exit 4). Without a control the verdict is at best "PASS, no control ran"'
            cand --control 'Run the control arm: the default, accepted for old scripts'
            cand --json 'Print the report as JSON on stdout'
            cand --processes 'Racers are separate processes of this binary, released together by closing the pipes they block on'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'racefree;stress;report'= {
            cand --json 'Print the merged verdict as JSON'
            cand --keep 'Keep every round''s tree and the rounds files. By default each round''s tree goes once it is verified (the first bad rounds'' stay, for inspection), the rounds files and the instances'' control directories go after the verdict, and verdict.json is left beside the reports'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'racefree;stress;worker'= {
            cand --racer 'racer'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'racefree;stress;crash-call'= {
            cand --lockfile 'hold: the lock it runs under'
            cand --nfs 'hold: the lock was taken with --nfs: its link lock must name this holder'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'racefree;stress;rmw'= {
            cand --read 'read'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'racefree;stress;help'= {
            cand makedirs 'Racers build the same deep trees at once; every round verified exactly'
            cand ident 'Racers look up loopback connections held in every TCP state'
            cand counter 'Racers take numbers from one counter file; all distinct, exactly 1..total'
            cand write 'Writers replace one file while readers check every read is one whole version'
            cand crash 'Racers'' counter, write and lock calls are SIGKILLed mid-operation; nothing committed is lost, nothing is left'
            cand lock 'Racers increment one counter, each read-modify-write under racefree lock'
            cand exec 'Race your own command: many copies at once, judged against a sequential run'
            cand report 'Merge the reports instances wrote to a shared tree into one verdict'
            cand worker 'One racer process (started by --processes; not for direct use)'
            cand crash-call 'One call the crash arm kills: a lock holder, or the control''s counter or writer (not for direct use)'
            cand rmw 'One locked read-modify-write (the COMMAND of stress lock; not for direct use)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'racefree;stress;help;makedirs'= {
        }
        &'racefree;stress;help;ident'= {
        }
        &'racefree;stress;help;counter'= {
        }
        &'racefree;stress;help;write'= {
        }
        &'racefree;stress;help;crash'= {
        }
        &'racefree;stress;help;lock'= {
        }
        &'racefree;stress;help;exec'= {
        }
        &'racefree;stress;help;report'= {
        }
        &'racefree;stress;help;worker'= {
        }
        &'racefree;stress;help;crash-call'= {
        }
        &'racefree;stress;help;rmw'= {
        }
        &'racefree;stress;help;help'= {
        }
        &'racefree;lock'= {
            cand -c 'Run COMMAND_STRING with ''sh -c'', as flock(1) -c does'
            cand --command 'Run COMMAND_STRING with ''sh -c'', as flock(1) -c does'
            cand -w 'Wait at most SECS seconds (fractions allowed; 0 is -n; inf, or too many to count, waits as long as it takes), then fail'
            cand --timeout 'Wait at most SECS seconds (fractions allowed; 0 is -n; inf, or too many to count, waits as long as it takes), then fail'
            cand --wait 'Wait at most SECS seconds (fractions allowed; 0 is -n; inf, or too many to count, waits as long as it takes), then fail'
            cand -E 'Exit status when the lock is not acquired (held, with -n or -w)'
            cand --conflict-exit-code 'Exit status when the lock is not acquired (held, with -n or -w)'
            cand -s 'Take a shared lock: any number of shared holders, no exclusive one'
            cand --shared 'Take a shared lock: any number of shared holders, no exclusive one'
            cand -x 'Take an exclusive lock (the default)'
            cand -e 'Take an exclusive lock (the default)'
            cand --exclusive 'Take an exclusive lock (the default)'
            cand -u 'Drop the lock on descriptor FD (the descriptor form only)'
            cand --unlock 'Drop the lock on descriptor FD (the descriptor form only)'
            cand -n 'Fail at once if the lock is held, instead of waiting'
            cand --nonblock 'Fail at once if the lock is held, instead of waiting'
            cand --nb 'Fail at once if the lock is held, instead of waiting'
            cand --nonblocking 'Fail at once if the lock is held, instead of waiting'
            cand -o 'COMMAND does not inherit the lock descriptor; racefree alone holds the lock'
            cand --close 'COMMAND does not inherit the lock descriptor; racefree alone holds the lock'
            cand -F 'Run COMMAND in racefree''s place (exec, no fork), so that COMMAND holds the lock'
            cand --no-fork 'Run COMMAND in racefree''s place (exec, no fork), so that COMMAND holds the lock'
            cand --nfs 'Take the link(2) lock LOCKFILE.nfslock as well as flock (for NFS without locking)'
            cand --verbose 'Say on standard error how long the lock took and what runs'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'racefree;counter'= {
            cand --add 'Add N (may be negative)'
            cand --init 'The value a new counter starts from, before the first --add'
            cand --sync 'fsync the file and its directory before printing the new value'
            cand --get 'Print the current value without changing it or taking the lock (a counter that does not exist yet reads as --init)'
            cand --json 'Print one JSON object: file, value, previous (null when this call created FILE) and created'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'racefree;write'= {
            cand -m 'Mode of the new content: octal (644) or symbolic (u=rw,go=r); default: FILE''s current mode, or 0666 & ~umask for a new file'
            cand --mode 'Mode of the new content: octal (644) or symbolic (u=rw,go=r); default: FILE''s current mode, or 0666 & ~umask for a new file'
            cand --no-follow 'A symlink at FILE is replaced by a regular file, instead of replacing its target'
            cand --no-sync 'Skip both fsyncs: still atomic for readers, but a crash may lose the new content'
            cand --no-empty 'Refuse to replace a non-empty FILE with empty content (exit 1, FILE untouched)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'racefree;help'= {
            cand makedirs 'Create directories and their missing ancestors, safely under concurrency'
            cand ident 'RFC 1413 ident: look up a connection''s owner, serve identd, or query one'
            cand stress 'Run parallel racers against every command and verify every answer'
            cand lock 'Run a command while holding a file lock (flock(1) without its traps)'
            cand counter 'Add to a number stored in a file, atomically, and print the new value'
            cand write 'Replace a file''s content with standard input, atomically and durably'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'racefree;help;makedirs'= {
        }
        &'racefree;help;ident'= {
            cand lookup 'Print the user that owns a TCP connection, matched on its 4-tuple only'
            cand serve 'Serve RFC 1413 ident under inetd, systemd socket activation, or standalone'
            cand query 'Ask a host''s identd who owns a connection'
        }
        &'racefree;help;ident;lookup'= {
        }
        &'racefree;help;ident;serve'= {
        }
        &'racefree;help;ident;query'= {
        }
        &'racefree;help;stress'= {
            cand makedirs 'Racers build the same deep trees at once; every round verified exactly'
            cand ident 'Racers look up loopback connections held in every TCP state'
            cand counter 'Racers take numbers from one counter file; all distinct, exactly 1..total'
            cand write 'Writers replace one file while readers check every read is one whole version'
            cand crash 'Racers'' counter, write and lock calls are SIGKILLed mid-operation; nothing committed is lost, nothing is left'
            cand lock 'Racers increment one counter, each read-modify-write under racefree lock'
            cand exec 'Race your own command: many copies at once, judged against a sequential run'
            cand report 'Merge the reports instances wrote to a shared tree into one verdict'
            cand worker 'One racer process (started by --processes; not for direct use)'
            cand crash-call 'One call the crash arm kills: a lock holder, or the control''s counter or writer (not for direct use)'
            cand rmw 'One locked read-modify-write (the COMMAND of stress lock; not for direct use)'
        }
        &'racefree;help;stress;makedirs'= {
        }
        &'racefree;help;stress;ident'= {
        }
        &'racefree;help;stress;counter'= {
        }
        &'racefree;help;stress;write'= {
        }
        &'racefree;help;stress;crash'= {
        }
        &'racefree;help;stress;lock'= {
        }
        &'racefree;help;stress;exec'= {
        }
        &'racefree;help;stress;report'= {
        }
        &'racefree;help;stress;worker'= {
        }
        &'racefree;help;stress;crash-call'= {
        }
        &'racefree;help;stress;rmw'= {
        }
        &'racefree;help;lock'= {
        }
        &'racefree;help;counter'= {
        }
        &'racefree;help;write'= {
        }
        &'racefree;help;help'= {
        }
    ]
    $completions[$command]
}
