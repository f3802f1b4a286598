#!/usr/bin/env python3
# Generates the CRD part of manifests/network-policy.yaml:
#   python3 scripts/calico-crds.py [manifests/network-policy.yaml]
# It rewrites what lies between the file's BEGIN/END calico-crds lines.
# The CRDs' validation carries Calico's rules (x-kubernetes-validations).
import json
def s(maxlen=1024, **kw): d={"type":"string","maxLength":maxlen}; d.update(kw); return d
SELRX = r"^(\s*(&&|\|\||==|!=|[(){},!]|'[^']*'|\"[^\"]*\"|[a-zA-Z0-9_./-]+))*\s*$"
SEL = s(1024, **{"x-kubernetes-validations":[{"rule":"self.matches('%s')" % SELRX.replace("\\","\\\\").replace("'","\\'"),
      "message":"no Calico selector (Calico rule: selector syntax): use label == 'value', label in {'a','b'}, has(label), all(), joined by && and || with ! and parentheses"}]})
# The policy's own selector also has its parentheses counted (too costly
# for the rules' selectors, which may be many: the agent reports those).
PAREN = "self.findAll('\\'[^\\']*\\'|\"[^\"]*\"|[()]')"
SELTOP = dict(SEL, **{"x-kubernetes-validations": SEL["x-kubernetes-validations"] + [
     {"rule":"%s.filter(t, t == '(').size() == %s.filter(t, t == ')').size()" % (PAREN, PAREN),
      "message":"no Calico selector (Calico rule: selector syntax): its parentheses do not pair up"}]})
def sel(field): return SELTOP if field == "spec.selector" else SEL
PORT = {"x-kubernetes-int-or-string": True, "maxLength": 32, "x-kubernetes-validations":[
  {"rule":"type(self) == int ? self >= 0 && self <= 65535 : self.matches('^([0-9]+(:[0-9]+)?|[a-zA-Z][-a-zA-Z0-9_.]*)$')",
   "message":"a port is a number 0..65535, a range LOW:HIGH or a port name"},
  {"rule":"type(self) == int || !self.contains(':') || int(self.split(':')[0]) <= int(self.split(':')[1])",
   "message":"port range upside down (Calico rule: port range min <= max): write LOW:HIGH, e.g. 30000:32767"},
  {"rule":"type(self) == int || !self.contains(':') || int(self.split(':')[1]) <= 65535",
   "message":"port range beyond 65535"}]}
PROTO = {"x-kubernetes-int-or-string": True, "maxLength": 16, "x-kubernetes-validations":[
  {"rule":"type(self) == int ? self >= 1 && self <= 255 : self in ['TCP','UDP','ICMP','ICMPv6','SCTP','UDPLite'] || self.matches('^[0-9]+$')",
   "message":"protocol is TCP, UDP, ICMP, ICMPv6, SCTP, UDPLite or a number 1..255"}]}
ICMP = {"type":"object","properties":{"type":{"type":"integer","minimum":0,"maximum":254},"code":{"type":"integer","minimum":0,"maximum":255}},
  "x-kubernetes-validations":[{"rule":"!has(self.code) || has(self.type)","message":"icmp code needs an icmp type"}]}
NETS = {"type":"array","maxItems":256,"items":s(64)}
ENTITY = {"type":"object","properties":{
      "nets":NETS,"notNets":NETS,
      "selector":sel("selector"),"notSelector":sel("notSelector"),"namespaceSelector":sel("namespaceSelector"),
      "ports":{"type":"array","maxItems":32,"items":PORT},"notPorts":{"type":"array","maxItems":32,"items":PORT},
      "serviceAccounts":{"type":"object","properties":{"names":{"type":"array","maxItems":64,"items":s(253)},"selector":sel("serviceAccounts.selector")}},
      "services":{"type":"object","x-kubernetes-preserve-unknown-fields":True}}}
def entity(): return ENTITY
PORTPROTO = "['TCP','UDP','SCTP','UDPLite','6','17','132','136']"
RULE = {"type":"object","required":["action"],"properties":{
  "action":{"type":"string","enum":["Allow","Deny","Log","Pass"]},
  "ipVersion":{"type":"integer","enum":[4,6]},
  "protocol":PROTO,"notProtocol":PROTO,"icmp":ICMP,"notICMP":ICMP,
  "source":entity(),"destination":entity(),
  "http":{"type":"object","x-kubernetes-preserve-unknown-fields":True},
  "metadata":{"type":"object","x-kubernetes-preserve-unknown-fields":True}},
  "x-kubernetes-validations":[
   {"rule":"((!has(self.source) || (!has(self.source.ports) && !has(self.source.notPorts))) && (!has(self.destination) || (!has(self.destination.ports) && !has(self.destination.notPorts)))) || (has(self.protocol) && string(self.protocol) in %s)" % PORTPROTO,
    "message":"ports need protocol TCP, UDP, SCTP or UDPLite (Calico rule: ports with protocol): set protocol"},
   {"rule":"(!has(self.icmp) && !has(self.notICMP)) || (has(self.protocol) && string(self.protocol) in ['ICMP','1'])",
    "message":"icmp and notICMP need protocol: ICMP (Calico rule: icmp with protocol ICMP)"}]}
TYPES = {"type":"array","maxItems":2,"items":{"type":"string","enum":["Ingress","Egress"]}}
def policy_spec(glob):
    props = {"order":{"type":"number"},"tier":s(253),"selector":sel("spec.selector"),
      "serviceAccountSelector":sel("spec.serviceAccountSelector"),"types":TYPES,
      "ingress":{"type":"array","maxItems":100,"items":RULE},"egress":{"type":"array","maxItems":100,"items":RULE},
      "performanceHints":{"type":"array","maxItems":8,"items":s(64)}}
    v = []
    if glob:
        props.update({"namespaceSelector":sel("spec.namespaceSelector"),"doNotTrack":{"type":"boolean"},"preDNAT":{"type":"boolean"},"applyOnForward":{"type":"boolean"}})
        v = [
         {"rule":"!(has(self.preDNAT) && self.preDNAT) || !has(self.egress) || size(self.egress) == 0",
          "message":"spec.egress: a preDNAT policy has ingress rules only (Calico rule: PreDNAT policy cannot have egress rules): remove spec.egress or set preDNAT: false"},
         {"rule":"!(has(self.preDNAT) && self.preDNAT) || !has(self.types) || !self.types.exists(t, t == 'Egress')",
          "message":"spec.types: a preDNAT policy applies to ingress only (Calico rule: PreDNAT policy cannot have egress type): remove Egress"},
         {"rule":"!(has(self.preDNAT) && self.preDNAT && has(self.doNotTrack) && self.doNotTrack)",
          "message":"spec.preDNAT and spec.doNotTrack are both true (Calico rule: PreDNAT and DoNotTrack cannot both be true): choose one"},
         {"rule":"!((has(self.preDNAT) && self.preDNAT) || (has(self.doNotTrack) && self.doNotTrack)) || (has(self.applyOnForward) && self.applyOnForward)",
          "message":"spec.applyOnForward must be true with preDNAT or doNotTrack (Calico rule: ApplyOnForward must be true if either PreDNAT or DoNotTrack is true)"}]
    d = {"type":"object","properties":props}
    if v: d["x-kubernetes-validations"]=v
    return d
HEP = {"type":"object","required":["node"],"properties":{"node":s(253),"interfaceName":s(15),
  "expectedIPs":{"type":"array","maxItems":64,"items":s(64)},"profiles":{"type":"array","maxItems":64,"items":s(253)},
  "ports":{"type":"array","maxItems":64,"items":{"type":"object","required":["name","port","protocol"],"properties":{
     "name":s(63),"port":{"type":"integer","minimum":0,"maximum":65535},"protocol":PROTO}}}},
  "x-kubernetes-validations":[{"rule":"(has(self.interfaceName) && self.interfaceName != '') || (has(self.expectedIPs) && size(self.expectedIPs) > 0)",
    "message":"give spec.interfaceName (or \"*\") or spec.expectedIPs (Calico rule: host endpoint needs an interface or expected IPs)"}]}
NSET = {"type":"object","properties":{"nets":{"type":"array","maxItems":4096,"items":s(64)}}}
def crd(kind, plural, scope, spec, short):
    return {"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition",
      "metadata":{"name":plural+".projectcalico.org","labels":{"app.kubernetes.io/managed-by":"iks"}},
      "spec":{"group":"projectcalico.org","scope":scope,
        "names":{"kind":kind,"listKind":kind+"List","plural":plural,"singular":kind.lower(),"shortNames":short},
        "versions":[{"name":"v3","served":True,"storage":True,
          "schema":{"openAPIV3Schema":{"type":"object","properties":{"apiVersion":{"type":"string"},"kind":{"type":"string"},"metadata":{"type":"object"},"spec":spec}}}}]}}
docs = [crd("GlobalNetworkPolicy","globalnetworkpolicies","Cluster",policy_spec(True),["gnp"]),
        crd("NetworkPolicy","networkpolicies","Namespaced",policy_spec(False),["cnp","caliconetworkpolicy"]),
        crd("HostEndpoint","hostendpoints","Cluster",HEP,["hep"]),
        crd("GlobalNetworkSet","globalnetworksets","Cluster",NSET,[]),
        crd("NetworkSet","networksets","Namespaced",NSET,["netset"])]
import yaml, sys
class D(yaml.SafeDumper): pass
parts = ["# Calico's projectcalico.org/v3 resources as CRDs (generated by\n# scripts/calico-crds.py: edit that script, not this part), so that\n# Calico YAML applies with kubectl; their validation refuses what Calico\n# refuses, naming Calico's rule.\n"]
for d in docs:
    parts.append("---\n")
    out = yaml.dump(d, Dumper=D, sort_keys=False, width=200)
    # Readable anchor names: the key that first holds each one.
    import re
    for key, anchor in re.findall(r"(\S+): &(id\d+)", out):
        name = {"items": "listitem"}.get(key, key) + "-" + anchor[2:]
        out = out.replace("&" + anchor, "&" + name).replace("*" + anchor, "*" + name)
    parts.append(out)
path = sys.argv[1] if len(sys.argv) > 1 else "manifests/network-policy.yaml"
text = open(path).read()
begin, end = "# BEGIN calico-crds\n", "# END calico-crds\n"
head, rest = text.split(begin)
_, tail = rest.split(end)
open(path, "w").write(head + begin + "".join(parts) + end + tail)
