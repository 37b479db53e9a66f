. ./greet.sh
got=$(greet World)
want='Hello, World!'
[ "$got" = "$want" ] || { echo "greet World = '$got', want '$want'"; exit 1; }
