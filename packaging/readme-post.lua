-- readme-post.lua: one post to the README's list through the installed daemon, as Postfix would send it.
-- Used by test-packages.sh. Needs -D MILTER=unix:/path, -D POST=file (a message openssl cms -encrypt wrote),
-- -D FROM=address, -D LIST=address, -D MEMBERS=a,b (every member must be added).
-- miltertest 1.4 aborts ("stack smashing detected") on a -D value with spaces and on a replacement body over
-- about 1 KiB: the caller keeps the post small (P-256 members) and passes no such values.
local conn = mt.connect(MILTER, 40, 0.25)
assert(conn ~= nil, "cannot connect to " .. MILTER)
assert(mt.negotiate(conn, nil, nil, nil) == nil, "negotiation failed")
mt.macro(conn, SMFIC_CONNECT, "j", "mx.example.org")
if not mt.test_option(conn, SMFIP_NOCONNECT) then
  assert(mt.conninfo(conn, "client.example.org", "192.0.2.10") == nil)
end
mt.macro(conn, SMFIC_MAIL, "{mail_addr}", FROM)
assert(mt.mailfrom(conn, "<" .. FROM .. ">") == nil, "mailfrom")
mt.macro(conn, SMFIC_RCPT, "i", "PKGTEST1")
assert(mt.rcptto(conn, "<" .. LIST .. ">") == nil, "rcptto")
assert(mt.getreply(conn) == SMFIR_CONTINUE, "RCPT not accepted")

-- Header fields (with folded continuation lines) and body of the file, body lines ending in CRLF.
local f = assert(io.open(POST, "rb"))
local text = f:read("*a"):gsub("\r\n", "\n")
f:close()
local split = text:find("\n\n", 1, true)
local head, body = text:sub(1, split), text:sub(split + 2)
local name, value = nil, nil
local function flush()
  if name ~= nil and not mt.test_option(conn, SMFIP_NOHDRS) then
    assert(mt.header(conn, name, value) == nil, "header " .. name)
  end
end
for line in head:gmatch("([^\n]*)\n") do
  if line:match("^[ \t]") and name ~= nil then
    value = value .. "\r\n" .. line
  else
    flush()
    name, value = line:match("^([^:]+):%s*(.*)$")
  end
end
flush()
if not mt.test_option(conn, SMFIP_NOEOH) then
  assert(mt.eoh(conn) == nil, "eoh")
end
assert(mt.bodystring(conn, (body:gsub("\n", "\r\n"))) == nil, "body")
mt.macro(conn, string.byte("E"), "i", "PKGTEST1")
assert(mt.eom(conn) == nil, "eom")
assert(mt.getreply(conn) == SMFIR_CONTINUE, "final reply is not CONTINUE (the daemon tempfailed or rejected the post)")
assert(mt.eom_check(conn, MT_RCPTDELETE, "<" .. LIST .. ">"), "no DELRCPT of the list")
local count = 0
for member in MEMBERS:gmatch("[^,]+") do
  assert(mt.eom_check(conn, MT_RCPTADD, "<" .. member .. ">"), "no ADDRCPT of " .. member)
  count = count + 1
end
assert(mt.eom_check(conn, MT_BODYCHANGE), "the body was not re-keyed")
local trace = count .. " members re-keyed for " .. LIST .. " (rekey mode)"
assert(mt.eom_check(conn, MT_HDRADD, "X-SecureList", trace), "no X-SecureList: " .. trace)
mt.disconnect(conn)
mt.echo("readme-post.lua: OK")
