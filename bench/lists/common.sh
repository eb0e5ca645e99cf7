# Shared by bench/lists/run.sh and bench/lists/large.sh (sourced, after scripts/lib.sh).

# write_milter_ini WORK: a lists-handler milter.ini whose socket, SQLite directory, keys and log live in WORK.
write_milter_ini() {
    cat >"$1/milter.ini" <<EOT
[Listener]
Socket = unix:$1/milter.sock
SocketMode = 0666
[Milter]
Handler = lists
[Directory]
Provider = sqlite
Path = $1/lists.db
[Keys]
Directory = $1/keys
[Notices]
Enabled = no
[Logging]
File = $1/milter.log
EOT
}

# make_entity SIZE OUT: a text/plain MIME entity of SIZE bytes (base64 of random bytes, CRLF lines).
make_entity() {
    python3 -c "import sys,base64,os; n=int(sys.argv[1]); b=base64.encodebytes(os.urandom(n*3//4+64)).decode(); sys.stdout.write('Content-Type: text/plain\r\n\r\n'+b.replace('\n','\r\n')[:n]+'\r\n')" "$1" >"$2"
}
