got=$(sh ./app.sh Ada)
want='Hi Ada'
[ "$got" = "$want" ] || { echo "app.sh Ada = '$got', want '$want'"; exit 1; }
