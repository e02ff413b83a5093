
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
            cand stress 'Run parallel racers against makedirs and ident and verify every answer'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'racefree;makedirs'= {
            cand -m 'Mode of each leaf this call creates: octal (755) or symbolic (u=rwx,g=rx,o=)'
            cand --mode 'Mode of each leaf this call creates: octal (755) or symbolic (u=rwx,g=rx,o=)'
            cand --beneath 'Resolve each PATH relative to DIR and never leave DIR (openat2 RESOLVE_BENEATH): ''..'' and symlinks that would escape are errors'
            cand --from 'Read paths from FILE (''-'' for standard input), one per line, in addition to any PATH arguments'
            cand -j 'How many paths to work on at once [default: the number of cores]'
            cand --jobs 'How many paths to work on at once [default: the number of cores]'
            cand --attempts 'How many times to start over when the tree changes under the walk'
            cand -v 'Print "racefree: created directory ''P''" for each directory this process created'
            cand --verbose 'Print "racefree: created directory ''P''" for each directory this process created'
            cand --no-symlinks 'Refuse every symlink in the path; walk one component at a time with openat(O_NOFOLLOW) and mkdirat from the first component. Safe in world-writable directories, where a component could be swapped for a symlink mid-walk'
            cand --exclusive 'Ancestors may already exist, but the leaf must be created by this call (the mkdir-as-a-lock idiom); exit 3 if it already exists'
            cand -0 'With --from: paths are separated by NUL bytes, not newlines'
            cand --null 'With --from: paths are separated by NUL bytes, not newlines'
            cand --json 'Print one JSON object per path on stdout: path, directory, created, retries, error'
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
            cand --forward 'With --nat: ask the identd of a host behind this one (not a container here) on PORT, and relay its answer'
            cand --numeric 'Print the uid instead of the user name'
            cand --json 'Print uid, user, state, inode and source as one JSON object'
            cand --nat 'Answer for connections this host translated (masquerade, SNAT): look the conntrack entry up, then the container holding the original connection (needs root)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'racefree;ident;serve'= {
            cand --listen 'Standalone: listen on ADDR:PORT ([V6ADDR]:PORT for IPv6; port 0 picks one); repeatable'
            cand --mode 'How the server was started'
            cand --max-conns 'Standalone and inetd wait: connections served at once; more are closed at once'
            cand --timeout 'Seconds a request line may take to arrive in full, counted from the previous one (RFC 1413 suggests 60 to 180)'
            cand --user 'After binding, drop to this user (setgroups, setgid, setuid) and verify the drop'
            cand --hide 'Answer HIDDEN-USER for this user (name or uid); repeatable'
            cand --source 'Where to read the kernel''s socket table'
            cand --forward 'With --nat: ask the identd of a host behind this one (not a container here) on PORT, and relay its answer'
            cand --proxy 'Answer queries forwarded by this NAT host (`racefree ident serve --nat --forward` or oidentd -f) about this host''s connections by ports alone; repeatable'
            cand --log 'Where to log queries and errors [default: syslog under inetd and systemd, stderr standalone]'
            cand --hide-all 'Answer HIDDEN-USER for everyone'
            cand --numeric 'Answer `USERID : OTHER : <uid>` instead of the user name'
            cand --nat 'Answer for connections this host translated (masquerade, SNAT): look the conntrack entry up, then the container holding the original connection (needs root)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'racefree;ident;query'= {
            cand --port 'identd''s port on HOST'
            cand --timeout 'Give up after this many seconds (connect, send and reply together)'
            cand --bind 'Connect from this local address (identd answers only about connections of the address it is asked from)'
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
            cand --duration 'Seconds for each of the two modes'
            cand --racers 'Racers per mode [default: 4 x cores]'
            cand --processes 'Racers are separate processes of this binary instead of threads'
            cand --json 'Print the report as JSON on stdout'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand makedirs 'Racers build the same deep trees at once; every round verified exactly'
            cand ident 'Racers look up loopback connections held in every TCP state'
            cand report 'Merge the JSON reports instances wrote to a shared tree into one verdict'
            cand worker 'One racer process (started by --processes; not for direct use)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'racefree;stress;makedirs'= {
            cand --dir 'The tree under test (any mount, network filesystems included). The run works in a new subdirectory it creates there [default: a fresh temporary directory]'
            cand --depth 'Levels below each round''s directory'
            cand --fanout 'Subdirectories per level (fanout^depth leaf paths per round)'
            cand --racers 'How many racers [default: 4 x cores]'
            cand --rounds 'Run exactly R rounds'
            cand --duration 'Run rounds until S seconds have passed (at least one round)'
            cand --barrier-file 'Across hosts: wait at this file on the shared tree until --expect instances have arrived, then start together. Needs --dir; every instance races in DIR/racefree-stress-NAME, which is kept, with each instance''s report-ID.json, for `racefree stress report`. Use a fresh PATH per run'
            cand --expect 'With --barrier-file: how many instances to wait for'
            cand --id 'This instance''s id [default: SLURM_PROCID, OMPI_COMM_WORLD_RANK, JOB_COMPLETION_INDEX, or 0]'
            cand --barrier-timeout 'With --barrier-file: seconds to wait for the others before giving up'
            cand --churn 'Also run removers that rmdir directories while the racers create them; makedirs'' retries must hold, and the report counts them'
            cand --keep 'Keep the work directory instead of removing it at the end'
            cand --processes 'Racers are separate processes of this binary, released together by closing the pipes they block on'
            cand --control 'Also run the known-bad control arm under the same load and report its failures beside racefree''s (the exit status ignores them)'
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
            cand --rounds 'Run exactly R rounds'
            cand --duration 'Run rounds until S seconds have passed (at least one round)'
            cand --barrier-file 'Across hosts: wait at this file on the shared tree until --expect instances have arrived, then start together. Needs --dir; every instance races in DIR/racefree-stress-NAME, which is kept, with each instance''s report-ID.json, for `racefree stress report`. Use a fresh PATH per run'
            cand --expect 'With --barrier-file: how many instances to wait for'
            cand --id 'This instance''s id [default: SLURM_PROCID, OMPI_COMM_WORLD_RANK, JOB_COMPLETION_INDEX, or 0]'
            cand --barrier-timeout 'With --barrier-file: seconds to wait for the others before giving up'
            cand --via-server 'Also send every lookup over RFC 1413 to a `racefree ident serve --listen` this run starts on loopback, end to end'
            cand --processes 'Racers are separate processes of this binary, released together by closing the pipes they block on'
            cand --control 'Also run the known-bad control arm under the same load and report its failures beside racefree''s (the exit status ignores them)'
            cand --json 'Print the report as JSON on stdout'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'racefree;stress;report'= {
            cand --json 'Print the merged verdict as JSON'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'racefree;stress;worker'= {
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand makedirs 'The body of a racer process (`racefree stress worker makedirs`)'
            cand ident 'ident'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'racefree;stress;worker;makedirs'= {
            cand --arm 'arm'
            cand --round-dir 'round-dir'
            cand --depth 'depth'
            cand --fanout 'fanout'
            cand --seed 'seed'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'racefree;stress;worker;ident'= {
            cand --spec 'spec'
            cand --seed 'seed'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'racefree;stress;worker;help'= {
            cand makedirs 'The body of a racer process (`racefree stress worker makedirs`)'
            cand ident 'ident'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'racefree;stress;worker;help;makedirs'= {
        }
        &'racefree;stress;worker;help;ident'= {
        }
        &'racefree;stress;worker;help;help'= {
        }
        &'racefree;stress;help'= {
            cand makedirs 'Racers build the same deep trees at once; every round verified exactly'
            cand ident 'Racers look up loopback connections held in every TCP state'
            cand report 'Merge the JSON reports instances wrote to a shared tree into one verdict'
            cand worker 'One racer process (started by --processes; not for direct use)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'racefree;stress;help;makedirs'= {
        }
        &'racefree;stress;help;ident'= {
        }
        &'racefree;stress;help;report'= {
        }
        &'racefree;stress;help;worker'= {
            cand makedirs 'The body of a racer process (`racefree stress worker makedirs`)'
            cand ident 'ident'
        }
        &'racefree;stress;help;worker;makedirs'= {
        }
        &'racefree;stress;help;worker;ident'= {
        }
        &'racefree;stress;help;help'= {
        }
        &'racefree;help'= {
            cand makedirs 'Create directories and their missing ancestors, safely under concurrency'
            cand ident 'RFC 1413 ident: look up a connection''s owner, serve identd, or query one'
            cand stress 'Run parallel racers against makedirs and ident and verify every answer'
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
            cand report 'Merge the JSON reports instances wrote to a shared tree into one verdict'
            cand worker 'One racer process (started by --processes; not for direct use)'
        }
        &'racefree;help;stress;makedirs'= {
        }
        &'racefree;help;stress;ident'= {
        }
        &'racefree;help;stress;report'= {
        }
        &'racefree;help;stress;worker'= {
            cand makedirs 'The body of a racer process (`racefree stress worker makedirs`)'
            cand ident 'ident'
        }
        &'racefree;help;stress;worker;makedirs'= {
        }
        &'racefree;help;stress;worker;ident'= {
        }
        &'racefree;help;help'= {
        }
    ]
    $completions[$command]
}
