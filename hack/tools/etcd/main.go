// Command etcd is etcd's own server entrypoint, built from the module pinned
// in this folder's go.mod so that envtest needs no downloaded binaries.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
