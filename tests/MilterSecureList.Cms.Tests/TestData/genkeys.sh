#!/bin/sh
# Regenerates the checked-in known-answer vectors (see PROVENANCE.md). Needs openssl 3.x.
# Most tests make their certificates and messages at test time (Infrastructure/TestPki.cs); these files are the
# fixed vectors of the RoundTrip/FixedValue pairs: messages produced once by OpenSSL and never by our code.
set -eu
cd "$(dirname "$0")"
cat > vectors.cnf <<'CNF'
[ca_ext]
basicConstraints=critical,CA:true
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash
[rsa_ext]
basicConstraints=critical,CA:false
keyUsage=critical,keyEncipherment,digitalSignature
extendedKeyUsage=emailProtection
subjectAltName=email:vectors-list@example.test
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
[ec_ext]
basicConstraints=critical,CA:false
keyUsage=critical,keyAgreement,digitalSignature
extendedKeyUsage=emailProtection
subjectAltName=email:vectors-list-ec@example.test
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
CNF
openssl req -x509 -newkey rsa:2048 -nodes -keyout vectors-ca.key -out vectors-ca.pem -subj "/CN=MilterSecureList Vectors CA" \
  -days 36500 -config vectors.cnf -extensions ca_ext
openssl req -newkey rsa:2048 -nodes -keyout vectors-list-rsa.key -out list-rsa.csr -subj "/CN=vectors-list/emailAddress=vectors-list@example.test"
openssl x509 -req -in list-rsa.csr -CA vectors-ca.pem -CAkey vectors-ca.key -set_serial 0x00A1B2C3 -days 36500 \
  -extfile vectors.cnf -extensions rsa_ext -out vectors-list-rsa.pem
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout vectors-list-ec.key -out list-ec.csr -subj "/CN=vectors-list-ec"
openssl x509 -req -in list-ec.csr -CA vectors-ca.pem -CAkey vectors-ca.key -set_serial 0x77 -days 36500 \
  -extfile vectors.cnf -extensions ec_ext -out vectors-list-ec.pem
rm -f list-rsa.csr list-ec.csr vectors.cnf vectors-ca.key
printf 'Content-Type: text/plain; charset=us-ascii\r\n\r\nMilterSecureList known-answer vector\r\n' > vector-plain.txt
openssl cms -encrypt -binary -aes256 -outform DER -in vector-plain.txt -out vector-rsa-v15-aes256cbc.der -recip vectors-list-rsa.pem
openssl cms -encrypt -binary -aes-128-gcm -outform DER -in vector-plain.txt -out vector-rsa-oaep256-aes128gcm.der \
  -recip vectors-list-rsa.pem -keyopt rsa_padding_mode:oaep -keyopt rsa_oaep_md:sha256
openssl cms -encrypt -binary -aes256 -stream -outform DER -in vector-plain.txt -out vector-ec-sha1kdf-aes256cbc-ber.der -recip vectors-list-ec.pem
openssl cms -encrypt -binary -aes-256-gcm -outform DER -in vector-plain.txt -out vector-ec-sha256kdf-aes256gcm.der \
  -recip vectors-list-ec.pem -keyopt ecdh_kdf_md:sha256
