package main

import (
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/iks-dev/iks/internal/config"
	"github.com/iks-dev/iks/server/etcd"
)

// datastoreClient connects to where the server with data dir dataDir
// keeps the cluster state, as its cluster.json records: the external etcd
// (--datastore-endpoint, with the files the server last started with) or
// the local embedded member. The record is nil for the embedded etcd.
func datastoreClient(dataDir string) (*clientv3.Client, *config.DatastoreInfo, error) {
	var ds *config.DatastoreInfo
	if ci, err := config.ReadClusterInfo(dataDir); err == nil {
		ds = ci.Datastore
	}
	cli, err := etcd.NewDatastoreClient(ds, config.Paths{Root: dataDir}.TLSDir())
	if !ds.External() {
		ds = nil
	}
	return cli, ds, err
}
