// pgfleet-netpol: NetworkPolicy enforcement for pgfleet's single-node cluster, in nftables.
//
// The usual enforcers cannot run on this kernel: kube-network-policies queues new connections
// to user space with nftables' `queue` (CONFIG_NFT_QUEUE is off), and kube-router and Calico's
// iptables mode match ipsets (xt_set is off). This one watches pods, namespaces and
// NetworkPolicies and keeps one nftables table on the forward hook that admits exactly what the
// policies allow. Pods on the node share one bridge, so br_netfilter must hand bridged traffic
// to that hook (net.bridge.bridge-nf-call-iptables=1). Traffic from the node itself (kubelet
// probes, port-forwards) does not cross the forward hook and is always allowed, as the API asks.
package main

import (
	"context"
	"flag"
	"log"
	"os/signal"
	"reflect"
	"sort"
	"syscall"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/knftables"
)

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of an identity that may list and watch pods, namespaces and networkpolicies")
	table := flag.String("table", "pgfleet-netpol", "the inet table this program owns")
	flag.Parse()

	config, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		log.Fatalf("kubeconfig: %v", err)
	}
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		log.Fatalf("client: %v", err)
	}
	nft, err := knftables.New(knftables.InetFamily, *table)
	if err != nil {
		log.Fatalf("nftables: %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	factory := informers.NewSharedInformerFactory(client, 0)
	pods := factory.Core().V1().Pods()
	namespaces := factory.Core().V1().Namespaces()
	policies := factory.Networking().V1().NetworkPolicies()
	changed := make(chan struct{}, 1)
	notify := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { notify() },
		UpdateFunc: func(any, any) { notify() },
		DeleteFunc: func(any) { notify() },
	}
	for _, informer := range []cache.SharedIndexInformer{pods.Informer(), namespaces.Informer(), policies.Informer()} {
		if _, err := informer.AddEventHandler(handler); err != nil {
			log.Fatalf("informer: %v", err)
		}
	}
	factory.Start(ctx.Done())
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			log.Fatalf("cache of %v did not sync", typ)
		}
	}
	log.Printf("watching pods, namespaces and networkpolicies; table inet %s", *table)

	var applied map[string][]string
	for {
		select {
		case <-ctx.Done():
			// Leave the rules in place: a restart must not open what the policies close.
			return
		case <-changed:
		}
		time.Sleep(50 * time.Millisecond) // let a burst of events settle into one update
		podList, _ := pods.Lister().List(labels.Everything())
		nsList, _ := namespaces.Lister().List(labels.Everything())
		npList, _ := policies.Lister().List(labels.Everything())
		c := &cluster{pods: podList, namespaces: map[string]labels.Set{}}
		for _, ns := range nsList {
			c.namespaces[ns.Name] = labels.Set(ns.Labels)
		}
		chains, err := c.rules(sortPolicies(npList))
		if err != nil {
			log.Printf("policies not applied: %v", err)
			continue
		}
		if reflect.DeepEqual(chains, applied) {
			continue
		}
		if err := apply(ctx, nft, chains); err != nil {
			log.Printf("nftables: %v", err)
			notify() // try again on the next pass
			time.Sleep(time.Second)
			continue
		}
		applied = chains
		log.Printf("applied %d policies: %d ingress and %d egress rules",
			len(npList), len(chains[ingress.chain]), len(chains[egress.chain]))
	}
}

func sortPolicies(list []*networkingv1.NetworkPolicy) []*networkingv1.NetworkPolicy {
	out := append([]*networkingv1.NetworkPolicy(nil), list...)
	sort.Slice(out, func(i, j int) bool {
		return out[i].Namespace+"/"+out[i].Name < out[j].Namespace+"/"+out[j].Name
	})
	return out
}

// apply replaces the table in one nftables transaction, so no packet sees half a rule set.
func apply(ctx context.Context, nft knftables.Interface, chains map[string][]string) error {
	tx := nft.NewTransaction()
	tx.Add(&knftables.Table{})
	tx.Delete(&knftables.Table{})
	tx.Add(&knftables.Table{})
	tx.Add(&knftables.Chain{
		Name:     "forward",
		Type:     knftables.PtrTo(knftables.FilterType),
		Hook:     knftables.PtrTo(knftables.ForwardHook),
		Priority: knftables.PtrTo(knftables.FilterPriority + "-5"),
	})
	tx.Add(&knftables.Rule{Chain: "forward", Rule: "ct state established,related accept"})
	for _, d := range []direction{ingress, egress} {
		tx.Add(&knftables.Chain{Name: d.chain})
		tx.Add(&knftables.Rule{Chain: "forward", Rule: "jump " + d.chain})
		for _, r := range chains[d.chain] {
			tx.Add(&knftables.Rule{Chain: d.chain, Rule: r})
		}
	}
	return nft.Run(ctx, tx)
}
