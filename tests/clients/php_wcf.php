<?php
// PHP's SoapClient against the simulator's ?wsdl or ?singleWsdl: the types it reads, and a WCF fault.
$c = new SoapClient($argv[1], ['cache_wsdl' => WSDL_CACHE_NONE, 'features' => SOAP_SINGLE_ELEMENT_ARRAYS]);
$login = ['userName' => 'demo', 'password' => 'demo'];
$out = [];
$r = $c->GetMessages($login + ['messageType' => 2, 'fromNumbers' => [], 'index' => 1, 'count' => 2]);
$m = $r->GetMessagesResult->MessageInfo[0];
$out['types'] = [];
foreach (['MessageId', 'Flash', 'Count', 'Cost'] as $f) {
  if (property_exists($m, $f)) { $out['types'][$f] = gettype($m->$f); }
}
$d = $c->GetBatchDelivery($login + ['batchSmsId' => $m->MessageId, 'index' => 1, 'count' => 100]);
$out['numbers'] = gettype($d->numbers->string);
$out['statuses'] = gettype($d->deliveryStatus->int);
$out['by_range'] = false;
foreach ($c->__getFunctions() as $f) {
  if (strpos($f, 'GetMessagesByDateRange(') !== false) { $out['by_range'] = true; }
}
try {
  $c->__soapCall('GetCredit', [$login], null, new SoapHeader('urn:example:transactions', 'Tx', '1', true));
  $out['fault'] = null;
} catch (SoapFault $f) {
  $out['fault'] = $f->faultcode;
}
echo json_encode($out), "\n";
