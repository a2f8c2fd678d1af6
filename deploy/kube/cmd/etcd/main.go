// Command etcd is the etcd server that kube-apiserver stores its objects in, built from the same module so
// its version is pinned beside Kubernetes' own (go.mod).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
