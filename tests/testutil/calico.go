package testutil

// IKSTutorialDenyNodePorts is IBM Cloud Kubernetes Service's tutorial
// policy "Block all incoming traffic to all node ports" (network policy
// tutorial, lesson 2), verbatim: a preDNAT GlobalNetworkPolicy on the
// public host endpoints. The policy engine's privileged test and the e2e
// test apply the same text.
const IKSTutorialDenyNodePorts = `apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: deny-nodeports
spec:
  applyOnForward: true
  preDNAT: true
  ingress:
  - action: Deny
    destination:
      ports:
      - 30000:32767
    protocol: TCP
    source: {}
  - action: Deny
    destination:
      ports:
      - 30000:32767
    protocol: UDP
    source: {}
  selector: ibm.role=='worker_public'
  order: 1100
  types:
  - Ingress
`
