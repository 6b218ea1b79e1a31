package main

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func pod(ns, name, ip string, lbl map[string]string, ports ...corev1.ContainerPort) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: lbl},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Ports: ports}}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIPs: []corev1.PodIP{{IP: ip}}},
	}
}

func world() *cluster {
	return &cluster{
		pods: []*corev1.Pod{
			pod("db", "pg-0", "10.0.0.10", map[string]string{"app": "pg"},
				corev1.ContainerPort{Name: "postgres", ContainerPort: 5432, Protocol: corev1.ProtocolTCP}),
			pod("db", "client", "10.0.0.11", map[string]string{"role": "client"}),
			pod("apps", "orders", "10.0.0.20", map[string]string{"app": "orders"}),
			pod("apps", "other", "10.0.0.21", map[string]string{"app": "other"}),
			{ObjectMeta: metav1.ObjectMeta{Namespace: "db", Name: "host"}, Spec: corev1.PodSpec{HostNetwork: true},
				Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIPs: []corev1.PodIP{{IP: "10.0.0.1"}}}},
		},
		namespaces: map[string]labels.Set{"db": {"kubernetes.io/metadata.name": "db"}, "apps": {"kubernetes.io/metadata.name": "apps"}},
	}
}

func port(value intstr.IntOrString) []networkingv1.NetworkPolicyPort {
	tcp := corev1.ProtocolTCP
	return []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &value}}
}

func ingressPolicy(from []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: "db", Name: "p"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "pg"}},
			Ingress:     []networkingv1.NetworkPolicyIngressRule{{From: from, Ports: ports}},
		},
	}
}

func rulesOf(t *testing.T, policies ...*networkingv1.NetworkPolicy) map[string][]string {
	t.Helper()
	out, err := world().rules(policies)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func expect(t *testing.T, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("rules:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestNoPolicyIsolatesNothing(t *testing.T) {
	got := rulesOf(t)
	expect(t, got["ingress"])
	expect(t, got["egress"])
}

func TestPodSelectorPeerInOwnNamespaceOnANamedPort(t *testing.T) {
	got := rulesOf(t, ingressPolicy(
		[]networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"role": "client"}}}},
		port(intstr.FromString("postgres"))))
	expect(t, got["ingress"],
		"ip daddr { 10.0.0.10 } ip saddr { 10.0.0.11 } meta l4proto tcp th dport { 5432 } return",
		"ip daddr { 10.0.0.10 } counter drop")
	expect(t, got["egress"])
}

func TestNamespaceSelectorAndPodSelectorTogether(t *testing.T) {
	got := rulesOf(t, ingressPolicy([]networkingv1.NetworkPolicyPeer{{
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "apps"}},
		PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app": "orders"}},
	}}, port(intstr.FromInt32(5432))))
	expect(t, got["ingress"],
		"ip daddr { 10.0.0.10 } ip saddr { 10.0.0.20 } meta l4proto tcp th dport { 5432 } return",
		"ip daddr { 10.0.0.10 } counter drop")
}

func TestPeersThatMatchNothingAdmitNothingButStillIsolate(t *testing.T) {
	got := rulesOf(t, ingressPolicy([]networkingv1.NetworkPolicyPeer{
		{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "nobody"}}}}, nil))
	expect(t, got["ingress"], "ip daddr { 10.0.0.10 } counter drop")
}

func TestEmptyRuleAdmitsEverythingAndAbsentRulesNothing(t *testing.T) {
	open := ingressPolicy(nil, nil)
	expect(t, rulesOf(t, open)["ingress"], "ip daddr { 10.0.0.10 } return", "ip daddr { 10.0.0.10 } counter drop")
	closed := ingressPolicy(nil, nil)
	closed.Spec.Ingress = nil
	expect(t, rulesOf(t, closed)["ingress"], "ip daddr { 10.0.0.10 } counter drop")
}

func TestIPBlockWithExceptions(t *testing.T) {
	got := rulesOf(t, ingressPolicy([]networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{
		CIDR: "10.0.0.0/24", Except: []string{"10.0.0.21/32"}}}}, nil))
	expect(t, got["ingress"],
		"ip daddr { 10.0.0.10 } ip saddr { 10.0.0.0/24 } ip saddr != { 10.0.0.21/32 } return",
		"ip daddr { 10.0.0.10 } counter drop")
}

func TestEgressResolvesNamedPortsOnThePeer(t *testing.T) {
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "e"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "orders"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
			Egress: []networkingv1.NetworkPolicyEgressRule{{
				To: []networkingv1.NetworkPolicyPeer{{
					NamespaceSelector: &metav1.LabelSelector{},
					PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app": "pg"}},
				}},
				Ports: port(intstr.FromString("postgres")),
			}},
		},
	}
	got := rulesOf(t, np)
	expect(t, got["ingress"])
	expect(t, got["egress"],
		"ip saddr { 10.0.0.20 } ip daddr { 10.0.0.10 } meta l4proto tcp th dport { 5432 } return",
		"ip saddr { 10.0.0.20 } counter drop")
}

func TestHostNetworkAndFinishedPodsAreNeverSelected(t *testing.T) {
	np := ingressPolicy(nil, nil)
	np.Spec.PodSelector = metav1.LabelSelector{}
	np.Spec.Ingress = nil
	got := rulesOf(t, np)
	expect(t, got["ingress"], "ip daddr { 10.0.0.10, 10.0.0.11 } counter drop")
}
