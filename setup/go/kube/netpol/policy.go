package main

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// direction is one half of a connection's admission: the destination pod's ingress policies
// and the source pod's egress policies must both allow it.
type direction struct {
	chain string // nftables chain
	self  string // address field of the policy's own pods
	peer  string // address field of the other end
}

var (
	ingress = direction{chain: "ingress", self: "ip daddr", peer: "ip saddr"}
	egress  = direction{chain: "egress", self: "ip saddr", peer: "ip daddr"}
)

// cluster is what the rules are computed from: every pod with an address on the pod network,
// and the namespaces' labels.
type cluster struct {
	pods       []*corev1.Pod
	namespaces map[string]labels.Set
}

// podIP is the pod's IPv4 address on the pod network, or "" for host-network and finished pods.
func podIP(pod *corev1.Pod) string {
	if pod.Spec.HostNetwork || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return ""
	}
	for _, ip := range pod.Status.PodIPs {
		if !strings.Contains(ip.IP, ":") {
			return ip.IP
		}
	}
	return ""
}

func selector(s *metav1.LabelSelector) (labels.Selector, error) {
	if s == nil {
		return labels.Everything(), nil
	}
	return metav1.LabelSelectorAsSelector(s)
}

// selectPods returns the addressed pods in namespaces accepted by nsOK whose labels match sel.
func (c *cluster) selectPods(sel labels.Selector, nsOK func(string) bool) []*corev1.Pod {
	var out []*corev1.Pod
	for _, pod := range c.pods {
		if podIP(pod) != "" && nsOK(pod.Namespace) && sel.Matches(labels.Set(pod.Labels)) {
			out = append(out, pod)
		}
	}
	return out
}

// ports is a protocol's port match: "5432", "8000-8010".
type ports map[corev1.Protocol][]string

// match renders the L4 part of a rule for one protocol, "" meaning any protocol and port.
func (p ports) match(proto corev1.Protocol) string {
	if p == nil {
		return ""
	}
	return fmt.Sprintf("meta l4proto %s th dport { %s }", strings.ToLower(string(proto)), strings.Join(p[proto], ", "))
}

// resolve turns a rule's ports into numbers for a pod that serves them (named ports are looked
// up in its containers). nil means every port; an empty map means none could be resolved.
func resolve(rulePorts []networkingv1.NetworkPolicyPort, pod *corev1.Pod) ports {
	if len(rulePorts) == 0 {
		return nil
	}
	out := ports{}
	for _, rp := range rulePorts {
		proto := corev1.ProtocolTCP
		if rp.Protocol != nil {
			proto = *rp.Protocol
		}
		switch {
		case rp.Port == nil:
			out[proto] = append(out[proto], "0-65535")
		case rp.Port.Type == intstr.Int:
			value := fmt.Sprint(rp.Port.IntVal)
			if rp.EndPort != nil {
				value = fmt.Sprintf("%d-%d", rp.Port.IntVal, *rp.EndPort)
			}
			out[proto] = append(out[proto], value)
		case pod != nil:
			for _, c := range pod.Spec.Containers {
				for _, cp := range c.Ports {
					if cp.Name == rp.Port.StrVal && cp.Protocol == proto {
						out[proto] = append(out[proto], fmt.Sprint(cp.ContainerPort))
					}
				}
			}
		}
	}
	for proto := range out {
		sort.Strings(out[proto])
		out[proto] = uniq(out[proto])
	}
	return out
}

func (p ports) key() string {
	if p == nil {
		return "*"
	}
	var parts []string
	for proto, list := range p {
		parts = append(parts, string(proto)+"="+strings.Join(list, ","))
	}
	sort.Strings(parts)
	return strings.Join(parts, ";")
}

func uniq(sorted []string) []string {
	out := sorted[:0]
	for i, s := range sorted {
		if i == 0 || s != sorted[i-1] {
			out = append(out, s)
		}
	}
	return out
}

// peer is one source (ingress) or destination (egress) match: addresses, or a CIDR with holes.
type peer struct {
	addrs  []string
	except []string
	pod    *corev1.Pod // set for a pod peer, whose named ports an egress rule resolves
}

// peers resolves a rule's peers; nil means any peer, an empty slice none.
func (c *cluster) peers(ns string, from []networkingv1.NetworkPolicyPeer) ([]peer, error) {
	if len(from) == 0 {
		return nil, nil
	}
	out := []peer{}
	for _, p := range from {
		if p.IPBlock != nil {
			out = append(out, peer{addrs: []string{p.IPBlock.CIDR}, except: p.IPBlock.Except})
			continue
		}
		podSel, err := selector(p.PodSelector)
		if err != nil {
			return nil, err
		}
		nsOK := func(name string) bool { return name == ns }
		if p.NamespaceSelector != nil {
			nsSel, err := selector(p.NamespaceSelector)
			if err != nil {
				return nil, err
			}
			nsOK = func(name string) bool { return nsSel.Matches(c.namespaces[name]) }
		}
		for _, pod := range c.selectPods(podSel, nsOK) {
			out = append(out, peer{addrs: []string{podIP(pod)}, pod: pod})
		}
	}
	return out, nil
}

func set(values []string) string {
	sort.Strings(values)
	return "{ " + strings.Join(uniq(values), ", ") + " }"
}

// rules renders the nftables rules of the chains "ingress" and "egress": an allowed connection
// returns from its chain; one to (from) a pod that a policy isolates and no rule allows drops.
func (c *cluster) rules(policies []*networkingv1.NetworkPolicy) (map[string][]string, error) {
	out := map[string][]string{}
	isolated := map[direction][]string{}
	for _, np := range policies {
		sel, err := selector(&np.Spec.PodSelector)
		if err != nil {
			return nil, fmt.Errorf("networkpolicy %s/%s: %w", np.Namespace, np.Name, err)
		}
		pods := c.selectPods(sel, func(name string) bool { return name == np.Namespace })
		if len(pods) == 0 {
			continue
		}
		for _, d := range policyDirections(np) {
			for _, pod := range pods {
				isolated[d] = append(isolated[d], podIP(pod))
			}
			var err error
			if d == ingress {
				for _, r := range np.Spec.Ingress {
					if err = c.addRules(out, d, np.Namespace, pods, r.From, r.Ports); err != nil {
						break
					}
				}
			} else {
				for _, r := range np.Spec.Egress {
					if err = c.addRules(out, d, np.Namespace, pods, r.To, r.Ports); err != nil {
						break
					}
				}
			}
			if err != nil {
				return nil, fmt.Errorf("networkpolicy %s/%s: %w", np.Namespace, np.Name, err)
			}
		}
	}
	for _, d := range []direction{ingress, egress} {
		out[d.chain] = uniq(sortedCopy(out[d.chain]))
		if len(isolated[d]) > 0 {
			out[d.chain] = append(out[d.chain], fmt.Sprintf("%s %s counter drop", d.self, set(isolated[d])))
		}
	}
	return out, nil
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

func policyDirections(np *networkingv1.NetworkPolicy) []direction {
	types := np.Spec.PolicyTypes
	if len(types) == 0 { // the API's default: Ingress, and Egress when there are egress rules
		types = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
		if len(np.Spec.Egress) > 0 {
			types = append(types, networkingv1.PolicyTypeEgress)
		}
	}
	var out []direction
	for _, t := range types {
		if t == networkingv1.PolicyTypeEgress {
			out = append(out, egress)
		} else {
			out = append(out, ingress)
		}
	}
	return out
}

// addRules adds the allow rules of one ingress or egress rule of a policy selecting pods.
func (c *cluster) addRules(out map[string][]string, d direction, ns string, pods []*corev1.Pod,
	rulePeers []networkingv1.NetworkPolicyPeer, rulePorts []networkingv1.NetworkPolicyPort) error {
	peers, err := c.peers(ns, rulePeers)
	if err != nil {
		return err
	}
	if peers != nil && len(peers) == 0 {
		return nil // peers that match nothing admit nothing
	}
	// Named ports belong to the destination: the policy's own pods on ingress, the peer on egress.
	type group struct {
		self, peer []string
		except     []string
		ports      ports
	}
	groups := map[string]*group{}
	add := func(selfIP string, p *peer, pp ports) {
		peerKey, exceptKey := "*", ""
		if p != nil {
			exceptKey = strings.Join(p.except, ",")
			if len(p.except) > 0 {
				peerKey = strings.Join(p.addrs, ",")
			}
		}
		key := pp.key() + "|" + exceptKey + "|" + peerKey
		g, ok := groups[key]
		if !ok {
			g = &group{ports: pp}
			if p != nil {
				g.except = p.except
			}
			groups[key] = g
		}
		g.self = append(g.self, selfIP)
		if p != nil {
			g.peer = append(g.peer, p.addrs...)
		}
	}
	for _, pod := range pods {
		if peers == nil {
			add(podIP(pod), nil, resolve(rulePorts, pod))
			continue
		}
		for i := range peers {
			dest := pod
			if d == egress {
				dest = peers[i].pod
			}
			add(podIP(pod), &peers[i], resolve(rulePorts, dest))
		}
	}
	for _, g := range groups {
		match := []string{d.self + " " + set(g.self)}
		if g.peer != nil {
			match = append(match, d.peer+" "+set(g.peer))
		}
		if len(g.except) > 0 {
			match = append(match, d.peer+" != "+set(append([]string(nil), g.except...)))
		}
		head := strings.Join(match, " ")
		if g.ports == nil {
			out[d.chain] = append(out[d.chain], head+" return")
			continue
		}
		for proto, list := range g.ports {
			if len(list) > 0 {
				out[d.chain] = append(out[d.chain], head+" "+g.ports.match(proto)+" return")
			}
		}
	}
	return nil
}
