
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
            cand --numeric 'Print the uid instead of the user name'
            cand --json 'Print uid, user, state, inode and source as one JSON object'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'racefree;ident;serve'= {
            cand --listen 'Standalone: listen on ADDR:PORT ([V6ADDR]:PORT for IPv6; port 0 picks one); repeatable'
            cand --mode 'How the server was started'
            cand --max-conns 'Standalone and inetd wait: connections served at once; more are closed at once'
            cand --timeout 'Close a connection idle this many seconds (RFC 1413 suggests 60 to 180)'
            cand --user 'After binding, drop to this user (setgroups, setgid, setuid) and verify the drop'
            cand --hide 'Answer HIDDEN-USER for this user (name or uid); repeatable'
            cand --source 'Where to read the kernel''s socket table'
            cand --log 'Where to log queries and errors [default: syslog under inetd and systemd, stderr standalone]'
            cand --hide-all 'Answer HIDDEN-USER for everyone'
            cand --numeric 'Answer `USERID : OTHER : <uid>` instead of the user name'
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
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
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
        }
        &'racefree;help;help'= {
        }
    ]
    $completions[$command]
}
